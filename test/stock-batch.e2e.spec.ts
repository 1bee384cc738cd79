import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleBatchOnce } from '../src/actors/service-actor.js';
import { stockActor } from '../src/actors/stock/stock-actor.js';
import { parseSagaEnvelope } from '../src/domain/events.js';
import { readStream } from '../src/persistence/event-store.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/** The stock service applies a batch in one transaction: each order must see what the ones before took. */
describe('the stock service, given several orders in one batch', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test hands the batch to the stock service itself.
    system = await TestSystem.start('stock-batch', { actors: [] });
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
    const created = await Promise.all(
      commandes.map(async (id) => (await readStream(system.choreo.pool, id)).map(parseSagaEnvelope)[0]),
    );

    // when the stock service gets the three CommandeCreee in one batch
    await handleBatchOnce(
      system.choreo.pool,
      stockActor,
      created.flatMap((event) => (event ? [event] : [])),
    );

    // then the first two are reserved and the third is refused with the 1 unit left
    const outcomes = await Promise.all(
      commandes.map(async (id) => (await readStream(system.choreo.pool, id)).map((e) => e.event_type)),
    );
    expect(outcomes).toEqual([
      ['CommandeCreee', 'StockReserve'],
      ['CommandeCreee', 'StockReserve'],
      ['CommandeCreee', 'StockIndisponible'],
    ]);
    const refused = (await readStream(system.choreo.pool, commandes[2] as string))[1];
    expect(refused?.data).toMatchObject({ manquants: [{ produit_id: produit, demande: 2, disponible: 1 }] });
    expect(await shop.stockOf(magasin, produit)).toMatchObject({ quantite: 1, reservee: 4 });
  });
});
