import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadCommande, statutOfCommande } from '../src/actors/commande/commande-stream.js';
import { withTransaction } from '../src/persistence/database.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('projections and replay', (bus) => {
  let system: TestSystem;
  let shop: Shop;
  let magasin: number;
  let produit: number;

  beforeAll(async () => {
    system = await TestSystem.start('projection', { bus });
    shop = new Shop(system.api);
    magasin = await shop.magasin();
    produit = await shop.produit(5);
    await shop.setStock(magasin, produit, 3);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it("answers the seed report's projection shape (§11) at /events/projections/:id", async () => {
    const client = await shop.client(100);
    const commandeId = await shop.order(client, magasin, [[produit, 2]]);
    await shop.finalCommande(commandeId);

    const response = await system.api.get(`/events/projections/${commandeId}`);

    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      client_id: client,
      produits: [{ produit_id: produit, quantite: 2, prix_unitaire: 5, sous_total: 10 }],
      total: 10,
      statut: 'vente_confirmee',
    });
  });

  it('rebuilds, for each scenario, the same state from the event store as the one reached live', async () => {
    await shop.setStock(magasin, produit, 10);
    const rich = await shop.client(1_000);
    const poor = await shop.client(1);
    const scenarios = {
      vente_confirmee: await shop.order(rich, magasin, [[produit, 1]]),
      stock_indisponible: await shop.order(rich, magasin, [[produit, 50]]),
      annulee: await shop.order(poor, magasin, [[produit, 1]]),
    };
    for (const [expected, commandeId] of Object.entries(scenarios)) {
      const live = await shop.finalCommande(commandeId);
      expect(live.statut).toBe(expected);
      const replayed = await withTransaction(system.choreo.pool, (tx) => loadCommande(tx, commandeId));
      expect(statutOfCommande(replayed)).toBe(live.statut);
      expect(replayed.snapshot?.context.raison ?? null).toBe(live.raison);
      // the saga actor's persisted state agrees too
      await eventually(
        async () =>
          (await system.choreo.pool.query('SELECT statut FROM sagas WHERE commande_id = $1', [commandeId]))
            .rows[0],
        (saga) => saga?.statut === expected,
        { description: `saga ${commandeId} to be ${expected}` },
      );
    }
  });

  it('lists the events of a commande in order, as envelopes', async () => {
    const client = await shop.client(100);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    await shop.finalCommande(commandeId);

    const response = await system.api.get(`/events/?aggregate_id=${commandeId}`);

    const events = response.body as {
      event_type: string;
      version: number;
      correlation_id: string;
      source: string;
    }[];
    expect(events.map((event) => event.version)).toEqual(events.map((_, index) => index + 1));
    expect(events[0]).toMatchObject({
      event_type: 'CommandeCreee',
      source: 'panier-service',
      correlation_id: commandeId,
    });
  });
});
