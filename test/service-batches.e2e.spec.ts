import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientActor } from '../src/actors/client/client-actor.js';
import { handleBatchOnce, handleOnce } from '../src/actors/service-actor.js';
import { stockActor } from '../src/actors/stock/stock-actor.js';
import { ventesActor } from '../src/actors/ventes/ventes-actor.js';
import type { SagaEnvelope } from '../src/domain/events.js';
import { eventOf, eventsOf, eventTypesOf } from './support/commande-events.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/**
 * Services apply a batch of events in one transaction, deciding in memory and writing once: each event
 * must see what the ones before it took, and each must get its own outcome.
 */
describe('the services, given several events in one batch', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test hands the batch to the stock service itself.
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('stock-batch', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('reserves for the orders while stock lasts and refuses the next with what is really left', async () => {
    // given 5 units in stock and three orders of 2 units each
    const magasin = await shop.magasin();
    const produit = await shop.produit(4);
    await shop.setStock(magasin, produit, 5);
    const commandes: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      commandes.push(await shop.order(await shop.client(100), magasin, [[produit, 2]]));
    }

    // when the stock service gets the three CommandeCreee in one batch
    await handBatch(stockActor, commandes, 'CommandeCreee');

    // then the first two are reserved and the third is refused with the 1 unit left
    const outcomes = await Promise.all(commandes.map((id) => eventTypesOf(system.choreo.pool, id)));
    expect(outcomes).toEqual([
      ['CommandeCreee', 'StockReserve'],
      ['CommandeCreee', 'StockReserve'],
      ['CommandeCreee', 'StockIndisponible'],
    ]);
    const refused = await eventOf(system.choreo.pool, commandes[2] as string, 'StockIndisponible');
    expect(refused.data).toMatchObject({ manquants: [{ produit_id: produit, demande: 2, disponible: 1 }] });
    expect(await shop.stockOf(magasin, produit)).toMatchObject({ quantite: 1, reservee: 4 });
  });

  it('debits each payment on what the previous ones left, records each sale, and settles the stock once', async () => {
    // given a client with 10.00 ordering twice, another with 100.00 ordering once, 1 unit at 6.00 each
    const magasin = await shop.magasin();
    const produit = await shop.produit(6);
    await shop.setStock(magasin, produit, 5);
    const modeste = await shop.client(10);
    const aise = await shop.client(100);
    const first = await shop.order(modeste, magasin, [[produit, 1]]);
    const second = await shop.order(modeste, magasin, [[produit, 1]]);
    const third = await shop.order(aise, magasin, [[produit, 1]]);
    const commandes = [first, second, third];

    // when each service gets the events it reacts to as one batch, in turn
    await handBatch(stockActor, commandes, 'CommandeCreee');
    await handBatch(clientActor, commandes, 'StockReserve');
    await handBatch(ventesActor, commandes, 'PaiementAccepte');
    await handBatch(stockActor, commandes, 'VenteConfirmee', 'PaiementRefuse');

    // then the second payment is refused with the 4.00 the first one left, the others are sold
    expect(await eventTypesOf(system.choreo.pool, first)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'VenteConfirmee',
    ]);
    expect(await eventTypesOf(system.choreo.pool, second)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementRefuse',
      'StockLibere',
    ]);
    expect(await eventTypesOf(system.choreo.pool, third)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'VenteConfirmee',
    ]);
    expect((await eventOf(system.choreo.pool, second, 'PaiementRefuse')).data).toMatchObject({
      solde: 4,
      raison: 'solde_insuffisant',
    });
    expect(await shop.solde(modeste)).toBe(4);
    expect(await shop.solde(aise)).toBe(94);
    // each sale confirmed with the id of its own row
    const ventes = await system.choreo.pool.query(
      'SELECT id, commande_id FROM ventes WHERE commande_id = ANY($1::text[]) ORDER BY id',
      [commandes],
    );
    expect(ventes.rows).toHaveLength(2);
    for (const vente of ventes.rows) {
      expect((await eventOf(system.choreo.pool, vente.commande_id, 'VenteConfirmee')).data).toMatchObject({
        vente_id: vente.id,
      });
    }
    // two units sold, the refused one back in stock
    const stock = await system.choreo.pool.query(
      'SELECT quantite, reservee, vendue FROM stock WHERE magasin_id = $1 AND produit_id = $2',
      [magasin, produit],
    );
    expect(stock.rows[0]).toEqual({ quantite: 3, reservee: 0, vendue: 2 });
  });

  it('refuses a payment request for a commande that does not exist, rather than failing on it', async () => {
    // given a StockReserve whose commande has no events (no creation, hence no client to lock)
    const orphan: SagaEnvelope = {
      event_id: randomUUID(),
      event_type: 'StockReserve',
      aggregate_id: `cmd-${randomUUID()}`,
      version: 2,
      position: 1,
      timestamp: new Date().toISOString(),
      source: 'stock-service',
      correlation_id: `cmd-${randomUUID()}`,
      causation_id: null,
      data: { client_id: 1, magasin_id: 1, produits: [{ produit_id: 1, quantite: 1 }], total: 1 },
    };

    // when the client service gets it, then it is refused (and recorded), not sent to the dead letters
    expect(await handleOnce(system.choreo.pool, clientActor, orphan)).toBe('refused');
  });

  /** Hands the actor, as one batch, every event of these types in these commandes' streams. */
  async function handBatch(
    actor: Parameters<typeof handleBatchOnce>[1],
    commandeIds: readonly string[],
    ...eventTypes: string[]
  ): Promise<void> {
    const streams = await Promise.all(commandeIds.map((id) => eventsOf(system.choreo.pool, id)));
    const batch = streams.flat().filter((event) => eventTypes.includes(event.event_type));
    expect(batch.length).toBeGreaterThan(1);
    await handleBatchOnce(system.choreo.pool, actor, batch);
  }
});
