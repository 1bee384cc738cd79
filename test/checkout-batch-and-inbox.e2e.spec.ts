import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CheckoutBatcher } from '../src/actors/panier/checkout-batcher.js';
import { handleOnce } from '../src/actors/service-actor.js';
import { stockActor } from '../src/actors/stock/stock-actor.js';
import { ConflictError } from '../src/domain/errors.js';
import { createLogger } from '../src/observability/logger.js';
import { eventOf } from './support/commande-events.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const countRowSchema = z.object({ n: z.number().int() });

/**
 * What the checkout batcher and the services' inbox do with what they must not take as usual: a client
 * checking out twice in the same shared transaction, and an event of a type the service does not handle.
 */
describe('checkouts written together and events a service does not handle', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test calls the batcher and the stock service itself.
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('checkout-batch-and-inbox', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('writes one checkout per client in a shared transaction: the same client twice gets one commande', async () => {
    // given three clients with a cart, and a batcher of their own
    const magasin = await shop.magasin();
    const produit = await shop.produit(3);
    const [first, other, twice] = [await shop.client(100), await shop.client(100), await shop.client(100)];
    for (const client of [first, other, twice]) await shop.addToCart(client, produit, 2);
    const batcher = new CheckoutBatcher(system.choreo.pool, { logger: createLogger('silent') });

    // when the first checks out, and while it is written the two others check out, one of them twice:
    // those three wait together for the next shared transaction
    const results = await Promise.allSettled(
      [first, other, twice, twice].map((client) => batcher.checkout(client, magasin, undefined)),
    );

    // then the client who checked out twice got one commande and one refusal (the cart was taken),
    // the others one commande each
    const [firstResult, otherResult, ...twiceResults] = results;
    expect(firstResult?.status).toBe('fulfilled');
    expect(otherResult?.status).toBe('fulfilled');
    expect(twiceResults.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refusal = twiceResults.find((result) => result.status === 'rejected');
    expect(refusal?.status === 'rejected' ? refusal.reason : null).toBeInstanceOf(ConflictError);
    expect(await commandesOf(twice)).toBe(1);
    expect(await commandesOf(other)).toBe(1);
  });

  it('ignores an event of a type the service does not handle, without recording it in its inbox', async () => {
    // given a commande whose stock the stock service reserved: its StockReserve, which that service
    // emits but does not handle
    const magasin = await shop.magasin();
    const produit = await shop.produit(3);
    await shop.setStock(magasin, produit, 5);
    const commandeId = await shop.order(await shop.client(100), magasin, [[produit, 1]]);
    const creation = await eventOf(system.choreo.pool, commandeId, 'CommandeCreee');
    expect(await handleOnce(system.choreo.pool, stockActor, creation)).toBe('applied');
    const reserve = await eventOf(system.choreo.pool, commandeId, 'StockReserve');
    expect(stockActor.handles).not.toContain(reserve.event_type);
    const stockBefore = await shop.stockOf(magasin, produit);

    // when the stock service is handed it
    const outcome = await handleOnce(system.choreo.pool, stockActor, reserve);

    // then it is ignored: nothing recorded in the inbox, nothing appended, the stock as it was
    expect(outcome).toBe('ignored');
    const recorded = await system.choreo.pool.query(
      'SELECT count(*)::int AS n FROM inbox WHERE consumer = $1 AND event_id = $2',
      [stockActor.name, reserve.event_id],
    );
    expect(countRowSchema.parse(recorded.rows[0]).n).toBe(0);
    const stored = await system.choreo.pool.query(
      'SELECT count(*)::int AS n FROM events WHERE aggregate_id = $1',
      [commandeId],
    );
    expect(countRowSchema.parse(stored.rows[0]).n).toBe(2);
    expect(await shop.stockOf(magasin, produit)).toEqual(stockBefore);
  });

  async function commandesOf(clientId: number): Promise<number> {
    const result = await system.choreo.pool.query(
      `SELECT count(*)::int AS n FROM events
       WHERE event_type = 'CommandeCreee' AND (data->>'client_id')::int = $1`,
      [clientId],
    );
    return countRowSchema.parse(result.rows[0]).n;
  }
});
