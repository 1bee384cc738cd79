import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineScheduler } from '../src/actors/commande/deadline-scheduler.js';
import { CheckoutBatcher } from '../src/actors/panier/checkout-batcher.js';
import { encodeEnvelope } from '../src/bus/envelope-codec.js';
import { EntrySignature } from '../src/bus/redis-streams/entry-signature.js';
import { StreamConsumer } from '../src/bus/redis-streams/stream-consumer.js';
import { UnavailableError } from '../src/domain/errors.js';
import { createLogger } from '../src/observability/logger.js';
import { createPool, type Pool } from '../src/persistence/database.js';
import { migrate } from '../src/persistence/migrate.js';
import { capturingLogger } from './support/capturing-logger.js';
import { eventually } from './support/eventually.js';
import { describeNeeding } from './support/servers.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { REDIS_URL } from './support/test-system.js';

/** A key of the test's own: these consumers run without a database to keep one in. */
const signature = EntrySignature.fromHex(randomBytes(32).toString('hex'));
const loadSignature = async () => signature;

describeNeeding(['redis'], 'the Redis consumer remembers a bounded number of failure reasons', () => {
  const prefix = `test:bounded-memory:${randomBytes(4).toString('hex')}:`;
  const stream = `${prefix}events`;
  let redis: Redis;

  /** A well-formed, signed entry, as the relay publishes it. */
  async function publish(index: number): Promise<void> {
    const commandeId = `cmd-${randomUUID()}`;
    const fields = encodeEnvelope({
      event_id: randomUUID(),
      event_type: 'CommandeExpiree',
      aggregate_id: commandeId,
      version: 2,
      position: index + 1,
      timestamp: new Date().toISOString(),
      source: 'commande-saga',
      correlation_id: commandeId,
      causation_id: null,
      data: { raison: 'delai_depasse', etat: 'en_attente_stock', delai_ms: 1 },
    });
    await redis.call('XADD', stream, '*', ...signature.sign(stream, fields));
  }

  beforeAll(() => {
    redis = new Redis(REDIS_URL, { protocol: 2 });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  function consumer(name: string, options: { claimIdleMs: number; maxDeliveries: number }) {
    let failed = 0;
    const created = new StreamConsumer({
      redisUrl: REDIS_URL,
      group: 'g',
      consumerName: name,
      streams: [stream],
      deadLetterStream: `${prefix}dead`,
      logger: createLogger('silent'),
      signature: loadSignature,
      // A failure that may pass later (a bug fixed meanwhile), unlike an undecodable entry: kept for retries.
      handle: async () => {
        throw new Error('the handler fails on this event');
      },
      events: { failed: () => (failed += 1) },
      blockMs: 100,
      rememberedFailures: 3,
      ...options,
    });
    return { consumer: created, failures: () => failed };
  }

  it('keeps at most its bound of reasons when the entries it failed on are settled by another consumer', async () => {
    // given ten entries that the handler fails on, read and failed on by consumer a, which does not
    // look for idle entries again for a minute
    for (let index = 0; index < 10; index += 1) await publish(index);
    const a = consumer('a', { claimIdleMs: 60_000, maxDeliveries: 5 });
    const b = consumer('b', { claimIdleMs: 50, maxDeliveries: 1 });
    try {
      a.consumer.start();
      await eventually(
        async () => a.failures(),
        (failures) => failures >= 10,
        {
          description: 'consumer a failed on the ten entries',
        },
      );

      // when consumer b takes them over (idle) and dead-letters them: a never settles them itself
      b.consumer.start();
      await eventually(
        async () => (await redis.xpending(stream, 'g')) as [number, ...unknown[]],
        ([pending]) => pending === 0,
        { description: 'no entry pending in the group' },
      );
      expect(await redis.xlen(`${prefix}dead`)).toBe(10);

      // then consumer a holds the reasons of at most three entries (its bound), not ten
      expect(a.consumer.rememberedFailureCount).toBeLessThanOrEqual(3);
    } finally {
      await a.consumer.stop();
      await b.consumer.stop();
    }
  });
});

describeNeeding(['redis'], 'a pending entry trimmed away', () => {
  const prefix = `test:trimmed-pending:${randomBytes(4).toString('hex')}:`;
  const stream = `${prefix}events`;
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(REDIS_URL, { protocol: 2 });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('is not let go silently: an error names the group, the stream and the entry', async () => {
    // given an entry read by consumer a of group g (which then stopped), and deleted from the stream
    // while still pending, as MAXLEN trimming would
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    const id = String(await redis.xadd(stream, '*', 'junk', '1'));
    await redis.xreadgroup('GROUP', 'g', 'a', 'COUNT', '10', 'STREAMS', stream, '>');
    await redis.xdel(stream, id);
    const { logger, lines } = capturingLogger();

    // when consumer a comes back (its sweep, or its read of its own pending entries, finds it gone)
    const a = new StreamConsumer({
      redisUrl: REDIS_URL,
      group: 'g',
      consumerName: 'a',
      streams: [stream],
      deadLetterStream: `${prefix}dead`,
      logger,
      signature: loadSignature,
      handle: async () => {},
      blockMs: 100,
      claimIdleMs: 60_000,
    });
    try {
      a.start();
      await eventually(
        async () => (await redis.xpending(stream, 'g')) as [number, ...unknown[]],
        ([pending]) => pending === 0,
        { description: 'the trimmed entry gone from the pending list' },
      );
    } finally {
      await a.stop();
    }

    // then it said so: that entry of that stream was never applied by group g
    expect(lines.find((line) => String(line.msg).includes('trimmed away'))).toMatchObject({
      level: 50,
      group: 'g',
      stream,
      entry: id,
    });
  });
});

describe('checkouts and deadlines under a slow database', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('bounded_memory');
    pool = createPool(database.url, 4);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  /** Clients with one article each in their cart, at one store. */
  async function clientsWithCarts(count: number): Promise<{ clientIds: number[]; magasinId: number }> {
    const magasin = await pool.query(`INSERT INTO magasins (nom) VALUES ($1) RETURNING id`, [
      `Magasin ${randomBytes(3).toString('hex')}`,
    ]);
    const produit = await pool.query(
      `INSERT INTO produits (nom, prix_cents) VALUES ('Produit', 100) RETURNING id`,
    );
    const clients = await pool.query(
      `INSERT INTO clients (nom, solde_cents) SELECT 'Client ' || i, 1000 FROM generate_series(1, $1) AS i
       RETURNING id`,
      [count],
    );
    const clientIds = clients.rows.map((row: { id: number }) => row.id);
    await pool.query(
      'INSERT INTO panier_articles (client_id, produit_id, quantite) SELECT unnest($1::int[]), $2, 1',
      [clientIds, produit.rows[0].id],
    );
    return { clientIds, magasinId: magasin.rows[0].id };
  }

  it('refuses a checkout with 503 (UnavailableError) once its bound of waiting checkouts is reached', async () => {
    // given ten clients with a cart, and a batcher that lets three checkouts wait behind the one writing
    const { clientIds, magasinId } = await clientsWithCarts(10);
    const batcher = new CheckoutBatcher(pool, { maxWaiting: 3, logger: createLogger('silent') });

    // when all ten check out at once (the first starts writing, the others would wait)
    const results = await Promise.allSettled(
      clientIds.map((clientId) => batcher.checkout(clientId, magasinId, undefined)),
    );

    // then the first and the three that could wait got their commande; the six others were refused at
    // once as unavailable (the API answers 503), their carts untouched
    const created = results.filter((result) => result.status === 'fulfilled');
    const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    expect(created).toHaveLength(4);
    expect(refused).toHaveLength(6);
    for (const reason of refused) expect(reason).toBeInstanceOf(UnavailableError);
    const carts = await pool.query(
      'SELECT count(*)::int AS n FROM panier_articles WHERE client_id = ANY($1)',
      [clientIds],
    );
    expect(carts.rows[0].n).toBe(6);
  });

  it('logs why checkouts written together failed', async () => {
    // given a batcher on a pool that cannot reach the database any more
    const { clientIds, magasinId } = await clientsWithCarts(3);
    const gone = createPool(database.url, 2);
    await gone.end();
    const { logger, lines } = capturingLogger();
    const batcher = new CheckoutBatcher(gone, { logger });

    // when three checkouts arrive together: the first alone, the two others in one shared transaction
    const results = await Promise.allSettled(
      clientIds.map((clientId) => batcher.checkout(clientId, magasinId, undefined)),
    );

    // then each caller got its error, and the shared transaction's failure was said, with its cause
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    const said = lines.find((line) => String(line.msg).includes('checkouts written together failed'));
    expect(said).toMatchObject({ level: 40, checkouts: 2 });
    expect(JSON.stringify(said?.err)).toMatch(/pool/i);
  });

  it('does not pile up deadline ticks while one outlasts the interval', async () => {
    // given a scheduler ticking every 20 ms that counts its ticks, and the sagas table locked by another
    // session, so that its first tick waits
    let ticks = 0;
    class CountingScheduler extends DeadlineScheduler {
      override async expireDue(limit?: number): Promise<number> {
        ticks += 1;
        return super.expireDue(limit);
      }
    }
    const tickMs = 20;
    const scheduler = new CountingScheduler({
      pool,
      logger: createLogger('silent'),
      deadlineMs: 60_000,
      tickMs,
    });
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE sagas IN ACCESS EXCLUSIVE MODE');
      scheduler.start();
      await eventually(
        async () =>
          // Not the locker's session: within a transaction, pg_stat_activity is read once.
          (
            await pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM sagas%'`,
            )
          ).rows[0].n,
        (waiting) => waiting === 1,
        { description: "the scheduler's tick waiting on the lock" },
      );

      // when the tick waits for twenty intervals before the lock goes
      const lockedAt = Date.now();
      await eventually(
        async () => Date.now(),
        (now) => now >= lockedAt + 20 * tickMs,
        { description: 'twenty intervals' },
      );
      await locker.query('ROLLBACK');
    } finally {
      await locker.end();
    }
    await scheduler.stop();

    // then the intervals that passed meanwhile were skipped, not queued to run one after the other
    expect(ticks).toBeLessThanOrEqual(3);
  });
});
