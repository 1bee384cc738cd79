import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { NEW_EVENTS } from '../../../test/support/new-events.js';
import { describeNeeding } from '../../../test/support/servers.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { StreamName } from '../../domain/events.js';
import { createLogger } from '../../observability/logger.js';
import type { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { appendToStream, appendToStreams } from '../../persistence/event-store.js';
import { EventStoreNotifier } from '../../persistence/event-store-notifier.js';
import { migrate } from '../../persistence/migrate.js';
import { decodeEnvelope } from '../envelope-codec.js';
import { type EntrySignature, loadEntrySignature } from './entry-signature.js';
import { createOutboxRelay } from './outbox-relay.js';
import { createRedis, type Redis } from './redis.js';
import { StreamKeys } from './stream-keys.js';

const STREAM: StreamName = 'commande.evenements';
const GROUP = 'stock-service';
/** A second group of the stream, further on than the first when Redis loses its data. */
const GROUP_AHEAD = 'commande-saga';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const readReplySchema = z
  .array(z.tuple([z.string(), z.array(z.tuple([z.string(), z.array(z.string())]))]))
  .nullable();

// A real Redis and a real PostgreSQL. Redis "loses its data" here by deleting the test's own keys: the
// Redis is shared with other test files, which a FLUSHALL would disturb.
describeNeeding(['redis'], 'the outbox relay when Redis loses its data (real Redis and PostgreSQL)', () => {
  let database: TestDatabase;
  let pool: Pool;
  let redis: Redis;
  let signature: EntrySignature;
  let notifier: EventStoreNotifier;
  let keys: StreamKeys;
  /** Runs once, when the relay next asks for its signing key: after it looked for its marker, before it publishes. */
  let beforeNextPublish: (() => Promise<void>) | null;

  beforeAll(async () => {
    database = await createTestDatabase('outbox_relay');
    pool = createPool(database.url, 3);
    await migrate(pool);
    signature = await loadEntrySignature(pool);
    redis = createRedis(REDIS_URL);
    notifier = new EventStoreNotifier(database.url, createLogger('silent'));
  });
  beforeEach(async () => {
    keys = new StreamKeys(`relay-${randomUUID().slice(0, 8)}:`);
    beforeNextPublish = null;
    await pool.query('DELETE FROM checkpoints');
    await pool.query('DELETE FROM consumer_group_positions');
  });
  afterAll(async () => {
    if (redis) {
      const leftovers = await redis.keys('relay-*');
      if (leftovers.length > 0) await redis.del(...leftovers);
      redis.disconnect();
    }
    await pool?.end();
    await database?.drop();
  });

  function relay(): CheckpointedReader {
    return createOutboxRelay({
      pool,
      redis,
      redisUrl: REDIS_URL,
      keys,
      notifier,
      logger: createLogger('silent'),
      signature: async () => {
        const hook = beforeNextPublish;
        beforeNextPublish = null;
        await hook?.();
        return signature;
      },
      consumers: new Map([[STREAM, [GROUP, GROUP_AHEAD]]]),
    });
  }

  const commandeCreee = NEW_EVENTS.CommandeCreee;

  async function placeOrder(): Promise<number> {
    const [stored] = await appendToStream(pool, `cmd-${randomUUID()}`, 0, [commandeCreee]);
    return z.number().parse(stored?.position);
  }

  /** `count` orders in one statement; their positions. */
  async function placeOrders(count: number): Promise<number[]> {
    const stored = await appendToStreams(
      pool,
      Array.from({ length: count }, () => ({
        aggregateId: `cmd-${randomUUID()}`,
        expectedVersion: 0,
        events: [commandeCreee],
      })),
    );
    return stored.map(({ position }) => position).sort((a, b) => a - b);
  }

  async function recordPosition(group: string, position: number): Promise<void> {
    await pool.query(
      `INSERT INTO consumer_group_positions (consumer_group, position) VALUES ($1, $2)
       ON CONFLICT (consumer_group) DO UPDATE SET position = EXCLUDED.position`,
      [group, position],
    );
  }

  /** Publishes until the relay has nothing left; a batch that fails is tried again, as the relay does. */
  async function drain(reader: CheckpointedReader): Promise<void> {
    let lastFailure: unknown = null;
    for (let batch = 0; batch < 10; batch++) {
      try {
        if ((await reader.processBatch()).kind === 'idle') return;
      } catch (error) {
        lastFailure = error;
      }
    }
    throw new Error(`the relay kept publishing (last failure: ${String(lastFailure)})`);
  }

  /** What a consumer of the group reads next, and acknowledges: the positions of its entries. */
  async function consume(count: number): Promise<number[]> {
    const key = keys.stream(STREAM);
    await redis.call('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM').catch((error: unknown) => {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    });
    const reply = readReplySchema.parse(
      await redis.call('XREADGROUP', 'GROUP', GROUP, 'c1', 'COUNT', String(count), 'STREAMS', key, '>'),
    );
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length > 0) await redis.call('XACK', key, GROUP, ...entries.map(([id]) => id));
    return entries.map(([, fields]) => {
      const decoded = decodeEnvelope(fields);
      if (!decoded.ok) throw new Error(decoded.reason);
      return decoded.envelope.position;
    });
  }

  async function loseRedisData(): Promise<void> {
    const lost = await redis.keys(`${keys.prefix}*`);
    if (lost.length > 0) await redis.del(...lost);
  }

  it('notices a loss that happens while it publishes a batch, and publishes again what the group had not handled', async () => {
    // given two orders published, the group having handled the first only (its position recorded)
    const reader = relay();
    const first = await placeOrder();
    const second = await placeOrder();
    await drain(reader);
    expect(await consume(1)).toEqual([first]);
    await recordPosition(GROUP, first);
    await recordPosition(GROUP_AHEAD, second);

    // when Redis loses its data after the relay found its marker and before its next batch reaches Redis
    const third = await placeOrder();
    beforeNextPublish = loseRedisData;
    await drain(reader);
    expect(beforeNextPublish).toBeNull();

    // then the relay notices, and the group is delivered every event it had not handled, the second included
    await drain(reader);
    const delivered = await consume(100);
    expect(delivered).toContain(second);
    expect(delivered).toContain(third);
    expect(delivered).not.toContain(first);
  });

  it('notices a second loss in the middle of a recovery, and starts it over', async () => {
    // given orders published, one group far behind the other, their positions recorded
    const reader = relay();
    const positions = await placeOrders(700);
    await drain(reader);
    const behind = z.number().parse(positions[99]);
    const ahead = z.number().parse(positions[649]);
    await recordPosition(GROUP, behind);
    await recordPosition(GROUP_AHEAD, ahead);

    // when Redis loses its data, and the relay publishes again the first batch of its recovery (500 events,
    // the group ahead not placed yet)
    await loseRedisData();
    expect((await reader.processBatch()).kind).toBe('handled');
    // and Redis loses its data again, before the next batch of the recovery reaches it
    beforeNextPublish = loseRedisData;
    await drain(reader);
    expect(beforeNextPublish).toBeNull();

    // then the group behind is delivered every event after its position, those lost the second time
    // included (some twice: the batch that met the empty Redis is there too, and the inbox skips it)
    const delivered = await consume(1_000);
    expect([...new Set(delivered)].sort((a, b) => a - b)).toEqual(positions.slice(100));
  });
});
