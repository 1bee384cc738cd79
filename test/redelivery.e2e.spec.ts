import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleOnce, type ServiceActor } from '../src/actors/service-actor.js';
import type { SagaEnvelope } from '../src/domain/events.js';
import { readStream } from '../src/persistence/event-store.js';
import { type BusProbe, busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { scrapeMetrics } from './support/prometheus-text.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('at-least-once delivery, exactly-once effects', (bus) => {
  let system: TestSystem;
  let probe: BusProbe;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('redelivery', { bus });
    probe = busProbe(system);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await probe?.close();
    await system?.stop();
  });

  it('given a completed order, when every one of its events is delivered again to every group, then nothing changes', async () => {
    // given a completed order
    const magasin = await shop.magasin();
    const produit = await shop.produit(4);
    await shop.setStock(magasin, produit, 10);
    const client = await shop.client(100);
    const commandeId = await shop.order(client, magasin, [[produit, 3]]);
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    const eventsBefore = await readStream(system.choreo.pool, commandeId);
    const ventesBefore = (await system.api.get('/api/ventes')).body;
    const refusedBefore = await refusedByServices();

    // when every event of that order is delivered again, with the same event_id, as after a crash between
    // applying and acknowledging (a relay publishing again to Redis; a checkpoint moved back on PostgreSQL)
    await probe.redeliver(eventsBefore);

    // then nothing moved: same events, same stock, same balance, same sales
    expect(await readStream(system.choreo.pool, commandeId)).toEqual(eventsBefore);
    expect(await shop.stockOf(magasin, produit)).toMatchObject({ quantite: 7, reservee: 0 });
    expect(await shop.solde(client)).toBe(88);
    expect((await system.api.get('/api/ventes')).body).toEqual(ventesBefore);
    // and each service knew the events as handled (its inbox): none was applied again. The order machine
    // would refuse every one of them too, since the commande moved on, so the stock, balance and sales
    // above stay right even without the inbox; a refusal counted here is what shows the inbox let a
    // duplicate through.
    expect(await refusedByServices()).toEqual(refusedBefore);
  });

  /** Events the services applied again and the order machine refused, per service. */
  async function refusedByServices(): Promise<Record<string, number>> {
    const refused = (await scrapeMetrics(system.api)).byLabel(
      'commande_evenements_refuses_total',
      'consumer',
    );
    return Object.fromEntries(
      ['stock-service', 'client-service', 'ventes-service'].map((service) => [
        service,
        refused[service] ?? 0,
      ]),
    );
  }
});

// No bus here: the test hands the event to the actor itself (the PostgreSQL bus, which every run has).
describe('the inbox', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await TestSystem.start('inbox', { bus: 'postgres', actors: [] });
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('given an event handed to an actor twice at once and once more, then the actor runs once', async () => {
    const calls: string[] = [];
    const countingActor: ServiceActor = {
      name: 'counting-service',
      streams: ['commande.evenements'],
      handles: ['CommandeCreee'],
      async handle(session, event) {
        calls.push(event.event_id);
        await session.tx.query(
          `INSERT INTO checkpoints (name, position) VALUES ('counting', 1)
           ON CONFLICT (name) DO UPDATE SET position = checkpoints.position + 1`,
        );
      },
    };
    const event = sampleCommandeCreee();

    const outcomes = await Promise.all([
      handleOnce(system.choreo.pool, countingActor, event),
      handleOnce(system.choreo.pool, countingActor, event),
    ]);
    outcomes.push(await handleOnce(system.choreo.pool, countingActor, event));

    expect(outcomes.sort()).toEqual(['applied', 'duplicate', 'duplicate']);
    const counter = await system.choreo.pool.query(
      "SELECT position FROM checkpoints WHERE name = 'counting'",
    );
    expect(counter.rows[0]?.position).toBe(1);
  });
});

function sampleCommandeCreee(): SagaEnvelope {
  return {
    event_id: randomUUID(),
    event_type: 'CommandeCreee',
    aggregate_id: `cmd-${randomUUID()}`,
    version: 1,
    position: 1,
    timestamp: new Date().toISOString(),
    source: 'panier-service',
    correlation_id: 'cmd-x',
    causation_id: null,
    data: {
      client_id: 1,
      magasin_id: 1,
      produits: [{ produit_id: 1, quantite: 1, prix_unitaire: 1, sous_total: 1 }],
      total: 1,
    },
  };
}
