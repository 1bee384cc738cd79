import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { capturingLogger } from '../../../test/support/capturing-logger.js';
import { eventOf } from '../../../test/support/commande-events.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { ConflictError, UnavailableError } from '../../domain/errors.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { migrate } from '../../persistence/migrate.js';
import { CheckoutBatcher } from './checkout-batcher.js';

/** Past PostgreSQL's integer: a shared transaction given it fails, as one would for any database error. */
const CLIENT_ID_OUT_OF_RANGE = 2 ** 31;

const newCommande = {
  commande_id: expect.stringMatching(/^cmd-/),
  statut: 'en_attente_stock',
  replayed: false,
};

// A checkout that never settles fails its test here instead of holding it until the suite's timeout.
describe('the checkout batcher', { timeout: 10_000 }, () => {
  let database: TestDatabase;
  let pool: Pool;
  let magasinId: number;
  let produitId: number;

  beforeAll(async () => {
    database = await createTestDatabase('checkout_batcher');
    pool = createPool(database.url);
    await migrate(pool);
    magasinId = await idOf(pool.query("INSERT INTO magasins (nom) VALUES ('Centre') RETURNING id"));
    produitId = await idOf(
      pool.query("INSERT INTO produits (nom, prix_cents) VALUES ('Pomme', 250) RETURNING id"),
    );
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function idOf(insert: Promise<{ rows: { id: number }[] }>): Promise<number> {
    const [row] = (await insert).rows;
    if (!row) throw new Error('nothing inserted');
    return row.id;
  }

  /** A new client with this many units in the cart (none: an empty cart). */
  async function client(quantite = 2): Promise<number> {
    const clientId = await idOf(
      pool.query("INSERT INTO clients (nom, solde_cents) VALUES ('Ada', 10000) RETURNING id"),
    );
    if (quantite > 0) {
      await pool.query('INSERT INTO panier_articles (client_id, produit_id, quantite) VALUES ($1, $2, $3)', [
        clientId,
        produitId,
        quantite,
      ]);
    }
    return clientId;
  }

  async function cartSize(clientId: number): Promise<number> {
    const result = await pool.query<{ lines: number }>(
      'SELECT count(*)::int AS lines FROM panier_articles WHERE client_id = $1',
      [clientId],
    );
    return result.rows[0]?.lines ?? 0;
  }

  async function transactionOf(commandeId: string): Promise<string> {
    const result = await pool.query<{ transaction_id: string }>(
      'SELECT transaction_id::text FROM events WHERE aggregate_id = $1',
      [commandeId],
    );
    const [row] = result.rows;
    if (!row) throw new Error(`commande ${commandeId} has no event`);
    return row.transaction_id;
  }

  it('turns the cart of a client into a new commande', async () => {
    const clientId = await client(3);

    const result = await new CheckoutBatcher(pool).checkout(clientId, magasinId, undefined);

    expect(result).toEqual(newCommande);
    const creee = await eventOf(pool, result.commande_id, 'CommandeCreee');
    expect(creee.data).toMatchObject({ client_id: clientId, magasin_id: magasinId, total: 7.5 });
    expect(await cartSize(clientId)).toBe(0);
  });

  it('writes the checkouts that arrive while one is written in one transaction', async () => {
    const [first, second, third] = [await client(), await client(), await client()];
    const batcher = new CheckoutBatcher(pool);

    const results = await Promise.all(
      [first, second, third].map((clientId) => batcher.checkout(clientId, magasinId, undefined)),
    );

    expect(results).toEqual([newCommande, newCommande, newCommande]);
    expect(new Set(results.map((result) => result.commande_id)).size).toBe(3);
    const [, together, alsoTogether] = await Promise.all(
      results.map((result) => transactionOf(result.commande_id)),
    );
    expect(together).toBe(alsoTogether);
  });

  it('writes at most as many checkouts together as it is allowed', async () => {
    const clients = [await client(), await client(), await client(), await client()];
    const batcher = new CheckoutBatcher(pool, { maxBatch: 2 });

    const results = await Promise.all(
      clients.map((clientId) => batcher.checkout(clientId, magasinId, undefined)),
    );

    const [, second, third, fourth] = await Promise.all(
      results.map((result) => transactionOf(result.commande_id)),
    );
    expect(second).toBe(third);
    expect(fourth).not.toBe(third);
  });

  it('refuses an empty cart on its own and writes the other checkouts waiting with it together', async () => {
    const { logger, lines } = capturingLogger();
    const batcher = new CheckoutBatcher(pool, { logger });
    const [first, withCart, empty, alsoWithCart] = [
      await client(),
      await client(),
      await client(0),
      await client(),
    ];

    const [, written, refused, alsoWritten] = await Promise.allSettled(
      [first, withCart, empty, alsoWithCart].map((clientId) =>
        batcher.checkout(clientId, magasinId, undefined),
      ),
    );

    expect(refused).toMatchObject({ status: 'rejected', reason: expect.any(ConflictError) });
    const commandes = [written, alsoWritten].map((outcome) => {
      if (outcome?.status !== 'fulfilled')
        throw new Error(`a checkout with a cart failed: ${String(outcome)}`);
      return outcome.value;
    });
    expect(commandes).toEqual([newCommande, newCommande]);
    const [transaction, alsoTransaction] = await Promise.all(
      commandes.map((commande) => transactionOf(commande.commande_id)),
    );
    expect(transaction).toBe(alsoTransaction);
    expect(lines.filter((line) => line.level === 40)).toEqual([]);
  });

  it('replays a checkout whose Idempotency-Key it has already seen', async () => {
    const clientId = await client();
    const batcher = new CheckoutBatcher(pool);

    const first = await batcher.checkout(clientId, magasinId, 'key-1');
    const again = await batcher.checkout(clientId, magasinId, 'key-1');

    expect(first).toEqual(newCommande);
    expect(again).toEqual({ ...first, replayed: true });
  });

  it('refuses a checkout at once when as many as allowed are already waiting', async () => {
    const [writing, waiting, refused] = [await client(), await client(), await client()];
    const batcher = new CheckoutBatcher(pool, { maxWaiting: 1 });

    const settled: number[] = [];
    const outcomes = await Promise.allSettled(
      [writing, waiting, refused].map((clientId) =>
        batcher.checkout(clientId, magasinId, undefined).finally(() => settled.push(clientId)),
      ),
    );

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    // at once: refused while the first checkout was still being written
    expect(settled[0]).toBe(refused);
    const refusal = outcomes[2]?.status === 'rejected' ? outcomes[2].reason : undefined;
    expect(refusal).toBeInstanceOf(UnavailableError);
    expect(refusal).toHaveProperty('message', '1 checkouts are waiting for the database: retry later');
    expect(await cartSize(refused)).toBe(1);
  });

  it('tries each checkout on its own when the shared transaction fails, and says so of shared ones only', async () => {
    const { logger, lines } = capturingLogger();
    const batcher = new CheckoutBatcher(pool, { logger });
    const fine = await client();

    const [failedAlone, written, failed] = await Promise.allSettled(
      [CLIENT_ID_OUT_OF_RANGE, fine, CLIENT_ID_OUT_OF_RANGE].map((clientId) =>
        batcher.checkout(clientId, magasinId, undefined),
      ),
    );

    expect(written).toEqual({ status: 'fulfilled', value: newCommande });
    for (const outcome of [failedAlone, failed]) {
      expect(outcome).toMatchObject({
        status: 'rejected',
        reason: { message: expect.stringMatching(/out of range/) },
      });
    }
    expect(lines.filter((line) => line.level === 40)).toEqual([
      expect.objectContaining({
        checkouts: 2,
        msg: 'checkouts written together failed: each is tried on its own',
      }),
    ]);
  });

  it('gives a client one commande for one cart when its checkouts wait together', async () => {
    const batcher = new CheckoutBatcher(pool);
    const [first, twice, other] = [await client(), await client(), await client()];

    const [, once, alsoWritten, again] = await Promise.allSettled(
      [first, twice, other, twice].map((clientId) => batcher.checkout(clientId, magasinId, undefined)),
    );

    expect(once).toEqual({ status: 'fulfilled', value: newCommande });
    expect(alsoWritten).toEqual({ status: 'fulfilled', value: newCommande });
    expect(again).toMatchObject({ status: 'rejected', reason: expect.any(ConflictError) });
  });

  it('rejects every checkout of a batch that fails unexpectedly, and says how many there were', async () => {
    const { logger, lines } = capturingLogger();
    // A log sink that throws: the one step of a batch that has no answer of its own for each checkout.
    vi.spyOn(logger, 'warn').mockImplementation(() => {
      throw new Error('log sink unavailable');
    });
    const batcher = new CheckoutBatcher(pool, { logger });
    const [first, fine] = [await client(), await client()];

    const [alone, ...batch] = await Promise.allSettled(
      [first, fine, CLIENT_ID_OUT_OF_RANGE].map((clientId) =>
        batcher.checkout(clientId, magasinId, undefined),
      ),
    );

    expect(alone).toEqual({ status: 'fulfilled', value: newCommande });
    expect(batch).toEqual([
      { status: 'rejected', reason: new Error('log sink unavailable') },
      { status: 'rejected', reason: new Error('log sink unavailable') },
    ]);
    expect(await cartSize(fine)).toBe(1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        checkouts: 2,
        msg: 'checkout batch failed unexpectedly',
        err: expect.objectContaining({ message: 'log sink unavailable' }),
      }),
    );
    // Settled: the next checkout is written, not stuck behind the failed batch.
    expect(await batcher.checkout(fine, magasinId, undefined)).toEqual(newCommande);
  });
});
