import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { describeNeeding } from '../../../test/support/servers.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { StoredEvent, StreamName } from '../../domain/events.js';
import { createLogger } from '../../observability/logger.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { migrate } from '../../persistence/migrate.js';
import { encodeEnvelope } from '../envelope-codec.js';
import { pairsToRecord } from '../field-pairs.js';
import { DeadLetterStream } from './dead-letter-stream.js';
import { type EntrySignature, loadEntrySignature } from './entry-signature.js';
import { GroupPositionRecorder, readGroupPositions } from './group-positions.js';
import { OUTBOX_RELAY_CHECKPOINT } from './outbox-relay.js';
import { createRedis, type Redis } from './redis.js';
import { StreamKeys } from './stream-keys.js';
import { StreamTrimmer } from './stream-trimmer.js';

const STREAM: StreamName = 'paiement.evenements';
const GROUP = 'ventes-service';
const readReplySchema = z
  .array(z.tuple([z.string(), z.array(z.tuple([z.string(), z.array(z.string())]))]))
  .nullable();

// A real Redis and a real PostgreSQL: the positions are read from the group's state in one, written to the other.
describeNeeding(['redis'], 'the consumer groups’ positions (real Redis and PostgreSQL)', () => {
  let database: TestDatabase;
  let pool: Pool;
  let redis: Redis;
  let signature: EntrySignature;
  let keys: StreamKeys;
  let key: string;
  /** Entry id of each position published. */
  let idOf: Map<number, string>;

  beforeAll(async () => {
    database = await createTestDatabase('group_positions');
    pool = createPool(database.url, 3);
    await migrate(pool);
    signature = await loadEntrySignature(pool);
    redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  beforeEach(async () => {
    keys = new StreamKeys(`positions-${randomUUID().slice(0, 8)}:`);
    key = keys.stream(STREAM);
    idOf = new Map();
    await pool.query('DELETE FROM consumer_group_positions');
    await pool.query('DELETE FROM checkpoints');
    await redis.call('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM');
  });
  afterAll(async () => {
    if (redis) {
      const leftovers = await redis.keys('positions-*');
      if (leftovers.length > 0) await redis.del(...leftovers);
      redis.disconnect();
    }
    await pool?.end();
    await database?.drop();
  });

  function recorder(): GroupPositionRecorder {
    return new GroupPositionRecorder({
      redis,
      pool,
      keys,
      consumers: new Map([[STREAM, [GROUP]]]),
      relayCheckpoint: OUTBOX_RELAY_CHECKPOINT,
      signature: async () => signature,
      logger: createLogger('silent'),
    });
  }

  function paiementAccepte(position: number): StoredEvent {
    return {
      event_id: randomUUID(),
      event_type: 'PaiementAccepte',
      aggregate_id: `cmd-${position}`,
      version: 3,
      position,
      timestamp: new Date().toISOString(),
      source: 'client-service',
      correlation_id: `cmd-${position}`,
      causation_id: null,
      data: { client_id: 1, magasin_id: 1, total: 1 },
    };
  }

  /** What the relay does: signed entries in position order, its marker, then its checkpoint. */
  async function publish(positions: number[], options: { checkpoint?: boolean } = {}): Promise<void> {
    for (const position of positions) {
      const id = await redis.call(
        'XADD',
        key,
        '*',
        ...signature.sign(key, encodeEnvelope(paiementAccepte(position))),
      );
      idOf.set(position, z.string().parse(id));
    }
    const last = positions.at(-1) ?? 0;
    await redis.set(keys.relayMarker, String(last));
    if (options.checkpoint ?? true) await setRelayCheckpoint(last);
  }

  async function setRelayCheckpoint(position: number): Promise<void> {
    await pool.query(
      `INSERT INTO checkpoints (name, position) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`,
      [OUTBOX_RELAY_CHECKPOINT, position],
    );
  }

  /** Delivers `count` new entries to the group (they are pending until acknowledged); returns their positions. */
  async function deliver(count: number): Promise<{ id: string; position: number; fields: string[] }[]> {
    const reply = readReplySchema.parse(
      await redis.call('XREADGROUP', 'GROUP', GROUP, 'c1', 'COUNT', String(count), 'STREAMS', key, '>'),
    );
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => ({
      id,
      fields,
      position: Number(pairsToRecord(fields).position),
    }));
  }

  async function ack(...positions: number[]): Promise<void> {
    await redis.xack(key, GROUP, ...positions.map((position) => idOf.get(position) ?? '0-0'));
  }

  async function markOf(): Promise<number | undefined> {
    return (await recorder().read()).get(GROUP);
  }

  it('stops below the oldest entry still in hand, however many after it were handled', async () => {
    // given ten entries delivered, handled out of order: all but the fourth acknowledged
    await publish([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await deliver(10);
    await ack(1, 2, 3, 5, 6, 7, 8, 9, 10);
    expect(await markOf()).toBe(3);

    // when the fourth is acknowledged too
    await ack(4);
    expect(await markOf()).toBe(10);

    // and entries not delivered yet hold it below the first of them
    await publish([11, 12, 13]);
    expect(await markOf()).toBe(10);
    await deliver(1);
    await ack(11);
    expect(await markOf()).toBe(11);
  });

  it('never passes what the relay has published and checkpointed', async () => {
    await publish([1, 2, 3]);
    await deliver(3);
    await ack(1, 2, 3);
    // a batch published but whose checkpoint has not committed yet (or a marker someone else wrote)
    await publish([4, 5], { checkpoint: false });
    await deliver(2);
    await ack(4, 5);
    expect(await markOf()).toBe(3);
    await setRelayCheckpoint(5);
    expect(await markOf()).toBe(5);
  });

  it('records nothing while Redis has lost its data, nor for a group that does not exist', async () => {
    await publish([1, 2]);
    await deliver(2);
    await ack(1, 2);
    await redis.del(keys.relayMarker);
    expect(await recorder().read()).toEqual(new Map());
    await redis.set(keys.relayMarker, '2');
    await redis.call('XGROUP', 'DESTROY', key, GROUP);
    expect(await recorder().read()).toEqual(new Map());
  });

  it('is held below a dead letter of the group, and below its entry re-driven until every group is done with it', async () => {
    // given an entry the group gave up on (moved to the dead letters, acknowledged), and the ones after handled
    await publish([1, 2, 3, 4]);
    const delivered = await deliver(4);
    const given = delivered.find(({ position }) => position === 2);
    if (!given) throw new Error('entry 2 was not delivered');
    await redis.call(
      'XADD',
      keys.deadLetters,
      '*',
      ...['stream', key, 'entry_id', given.id, 'group', GROUP, 'reason', 'boom', 'deliveries', '5'],
      ...['failed_at', new Date().toISOString(), 'fields', JSON.stringify(pairsToRecord(given.fields))],
    );
    await ack(1, 2, 3, 4);
    expect(await markOf()).toBe(1);

    // when it is re-driven, delivered and handled
    const deadLetters = new DeadLetterStream(redis, keys, 'redis://test');
    const [letter] = await deadLetters.list();
    if (!letter) throw new Error('no dead letter');
    const redriven = await deadLetters.redrive(letter.id);
    expect(await markOf()).toBe(1);
    const again = await deliver(1);
    expect(again.map(({ position }) => position)).toEqual([2]);
    await redis.xack(key, GROUP, redriven.new_entry_id);

    // then it still holds the group below it, until the trimmer finds every group done with it
    expect(await markOf()).toBe(1);
    await new StreamTrimmer({
      redis,
      keys,
      consumers: new Map([[STREAM, [GROUP]]]),
      retentionMs: 0,
      logger: createLogger('silent'),
    }).trimAll(Date.now() + 60_000);
    expect(await markOf()).toBe(4);
  });

  it('skips a group whose next entry is not the relay’s, and writes only upwards', async () => {
    await publish([1, 2, 3]);
    await deliver(3);
    await ack(1, 2, 3);
    const positions = recorder();
    await positions.record();
    expect((await readGroupPositions(pool, [GROUP])).get(GROUP)).toBe(3);

    // a forged entry with a far position waits as the next one: nothing is read from it
    const forged = z
      .string()
      .parse(await redis.call('XADD', key, '*', ...encodeEnvelope(paiementAccepte(1_000))));
    await publish([4]);
    expect(await positions.read()).toEqual(new Map());

    // once it is set aside, the group is read again; a lower reading never lowers what was recorded
    await redis.xdel(key, forged);
    await pool.query('UPDATE consumer_group_positions SET position = 50');
    expect(await recorder().record()).toEqual(new Map([[GROUP, 3]]));
    const recorded = await readGroupPositions(pool, [GROUP, 'commande-saga']);
    expect(recorded).toEqual(
      new Map([
        [GROUP, 50],
        ['commande-saga', 0],
      ]),
    );
  });
});
