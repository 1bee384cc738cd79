import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { clientActor } from '../../src/actors/client/client-actor.js';
import { SAGA_CONSUMER, SAGA_STREAMS } from '../../src/actors/commande/saga-actor.js';
import { stockActor } from '../../src/actors/stock/stock-actor.js';
import { ventesActor } from '../../src/actors/ventes/ventes-actor.js';
import { encodeEnvelope } from '../../src/bus/envelope-codec.js';
import { pairsToRecord } from '../../src/bus/field-pairs.js';
import { loadEntrySignature } from '../../src/bus/redis-streams/entry-signature.js';
import type { BusKind } from '../../src/config.js';
import {
  STREAM_NAMES,
  STREAM_OF_EVENT_TYPE,
  type StoredEvent,
  type StreamName,
} from '../../src/domain/events.js';
import { eventually } from './eventually.js';
import { compareEntryIds, groupsOf, waitUntilConsumed } from './stream-groups.js';
import type { TestSystem } from './test-system.js';

/*
 * What a test does to the bus itself, to provoke a situation or to see where the events are, for each
 * bus: the Redis Streams mechanics (XADD, XPENDING, consumer groups) or their PostgreSQL bus equivalents
 * (rows of the event store, each group's checkpoint `bus:<group>` in `checkpoints`, its row lock). Tests
 * say what they prove; this file says how each bus shows it.
 */

/** Every consumer group and the streams it reads (as src/app.ts subscribes them). */
export const CONSUMER_GROUPS: ReadonlyMap<string, readonly StreamName[]> = new Map([
  [stockActor.name, stockActor.streams],
  [clientActor.name, clientActor.streams],
  [ventesActor.name, ventesActor.streams],
  [SAGA_CONSUMER, SAGA_STREAMS],
]);

export function groupsReading(stream: StreamName): string[] {
  return [...CONSUMER_GROUPS].filter(([, streams]) => streams.includes(stream)).map(([group]) => group);
}

export function streamOf(eventType: string): StreamName {
  const stream = (STREAM_OF_EVENT_TYPE as Record<string, StreamName>)[eventType];
  if (stream === undefined) throw new Error(`${eventType} travels on no stream`);
  return stream;
}

/**
 * An entry no consumer can decode, as a broken producer inside choreo would publish it (on Redis, signed
 * with the database's key, so that it is refused for what it says, not for who wrote it).
 */
export interface MalformedEntry {
  stream: StreamName;
  /** The stream as a dead letter names it: the Redis key, or the stream's name on the PostgreSQL bus. */
  deadLetterStream: string;
  /** Where it is on the bus, as a dead letter names it (`entry_id`). */
  entryId: string;
  /** What the dead letter must show of it (`fields`). */
  fields: Record<string, string>;
  /** Why a consumer gives up on it. */
  reason: RegExp;
  /** Deliveries before it is dead-lettered: one on either bus, since no retry can make it decodable. */
  deliveries: number;
}

/** A consumer of a group that takes the group's next events and dies without finishing them. */
export interface GhostConsumer {
  /** Takes the events waiting for the group (waits until there are some). */
  take(): Promise<void>;
  /** Whether it still holds work of the group that no one else may do. */
  holdsWork(): Promise<boolean>;
  /** Its process dies: from now on it holds its work only as long as the bus lets it. */
  die(): Promise<void>;
  /** Whether the group kept no trace of it. */
  forgotten(): Promise<boolean>;
}

export interface EventsInHand {
  group: string;
  stream: StreamName | null;
  count: number;
}

export interface BusProbe {
  readonly bus: BusKind;
  /** What /ready says of Redis while only PostgreSQL is down. */
  readonly redisReadiness: string | RegExp;
  injectMalformed(stream: StreamName): Promise<MalformedEntry>;
  /** Whether every one of `groups` was handed the entry and finished with it (acknowledged / checkpointed). */
  consumedBy(groups: string[], stream: StreamName, entryId: string): Promise<boolean>;
  /**
   * Delivers `events` again to every group that reads them, as a crash between applying an event and
   * acknowledging it would, and waits until each group has been through them again.
   */
  redeliver(events: StoredEvent[]): Promise<void>;
  /**
   * Events a group took but did not record as finished: entries pending in a Redis consumer group; on the
   * PostgreSQL bus, events a group applied (its inbox, the saga's version) that its checkpoint is not past.
   */
  eventsInHand(): Promise<EventsInHand[]>;
  /** Events of `stream` the bus keeps for `group`, that it has not taken yet. */
  eventsWaiting(stream: StreamName, group: string): Promise<number>;
  /** Prepared before the events it will take exist (a Redis group must exist before them). */
  ghostConsumer(group: string, stream: StreamName): Promise<GhostConsumer>;
  close(): Promise<void>;
}

export function busProbe(system: TestSystem): BusProbe {
  return system.bus === 'redis' ? new RedisStreamsProbe(system) : new PostgresBusProbe(system);
}

class RedisStreamsProbe implements BusProbe {
  readonly bus = 'redis' as const;
  readonly redisReadiness = 'ok';

  constructor(private readonly system: TestSystem) {}

  /** The database's key, as the relay reads it. */
  private signature() {
    return loadEntrySignature(this.system.choreo.pool);
  }

  async injectMalformed(stream: StreamName): Promise<MalformedEntry> {
    const fields = {
      event_id: 'not-a-uuid',
      event_type: 'StockReserve',
      aggregate_id: 'cmd-x',
      data: '{oops',
    };
    const key = this.system.streamKey(stream);
    const signed = (await this.signature()).sign(key, Object.entries(fields).flat());
    const entryId = String(await this.system.redis.call('XADD', key, '*', ...signed));
    return {
      stream,
      deadLetterStream: key,
      entryId,
      fields: pairsToRecord(signed),
      reason: /invalid envelope/,
      deliveries: 1,
    };
  }

  async consumedBy(groups: string[], stream: StreamName, entryId: string): Promise<boolean> {
    const key = this.system.streamKey(stream);
    const states = await groupsOf(this.system.redis, key);
    const pending = z.array(z.unknown());
    for (const group of groups) {
      const state = states.find((candidate) => candidate.name === group);
      if (state === undefined || compareEntryIds(state.lastDeliveredId, entryId) < 0) return false;
      const entry = pending.parse(
        await this.system.redis.call('XPENDING', key, group, entryId, entryId, '1'),
      );
      if (entry.length > 0) return false;
    }
    return true;
  }

  async redeliver(events: StoredEvent[]): Promise<void> {
    for (const event of events) {
      const stream = streamOf(event.event_type);
      const key = this.system.streamKey(stream);
      // Signed as the relay signs it: a republished event, not a forged one.
      const signed = (await this.signature()).sign(key, encodeEnvelope(event));
      const entryId = String(await this.system.redis.call('XADD', key, '*', ...signed));
      await waitUntilConsumed(this.system.redis, key, entryId, groupsReading(stream));
    }
  }

  async eventsInHand(): Promise<EventsInHand[]> {
    const inHand: EventsInHand[] = [];
    for (const stream of STREAM_NAMES) {
      const key = this.system.streamKey(stream);
      if ((await this.system.redis.exists(key)) === 0) continue;
      for (const group of await groupsOf(this.system.redis, key))
        inHand.push({ group: group.name, stream, count: group.pending });
    }
    return inHand;
  }

  async eventsWaiting(stream: StreamName, group: string): Promise<number> {
    const key = this.system.streamKey(stream);
    const state = (await groupsOf(this.system.redis, key).catch(() => [])).find(
      (candidate) => candidate.name === group,
    );
    // A group not created yet will be given the whole stream.
    if (state === undefined) return this.system.redis.xlen(key);
    const pending = (await this.system.redis.xrange(key, `(${state.lastDeliveredId}`, '+')).length;
    return pending;
  }

  async ghostConsumer(group: string, stream: StreamName): Promise<GhostConsumer> {
    const { redis } = this.system;
    const key = this.system.streamKey(stream);
    await redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM');
    return {
      take: async () => {
        await eventually(
          async () => redis.call('XREADGROUP', 'GROUP', group, 'ghost', 'COUNT', '10', 'STREAMS', key, '>'),
          (reply) => reply !== null,
          { description: 'the ghost consumer to take the entry' },
        );
      },
      holdsWork: async () =>
        JSON.stringify(await redis.call('XPENDING', key, group, '-', '+', '10')).includes('ghost'),
      // It just never reads again: its entries stay pending under its name until claimed.
      die: async () => {},
      forgotten: async () =>
        !JSON.stringify(await redis.call('XINFO', 'CONSUMERS', key, group)).includes('ghost'),
    };
  }

  async close(): Promise<void> {}
}

const countSchema = z.object({ n: z.coerce.number().int() });

class PostgresBusProbe implements BusProbe {
  readonly bus = 'postgres' as const;
  readonly redisReadiness = /^not used/;
  private readonly clients = new Set<pg.Client>();

  constructor(private readonly system: TestSystem) {}

  private get pool() {
    return this.system.choreo.pool;
  }

  private async checkpointOf(group: string): Promise<number> {
    const result = await this.pool.query('SELECT position FROM checkpoints WHERE name = $1', [
      `bus:${group}`,
    ]);
    return Number(result.rows[0]?.position ?? 0);
  }

  /** A row of the event store whose payload is not what its type says (the store accepts any JSON). */
  async injectMalformed(stream: StreamName): Promise<MalformedEntry> {
    const eventType = stream === 'stock.evenements' ? 'StockReserve' : 'CommandeCreee';
    const aggregateId = `cmd-malformed-${randomUUID()}`;
    const inserted = await this.pool.query(
      `INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, data)
       VALUES ($1, $2, $3, 1, 'a-broken-producer', $3, '{}') RETURNING position`,
      [randomUUID(), eventType, aggregateId],
    );
    const position = String(z.object({ position: z.coerce.number() }).parse(inserted.rows[0]).position);
    return {
      stream,
      deadLetterStream: stream,
      entryId: position,
      fields: { event_type: eventType, aggregate_id: aggregateId, data: '{}' },
      reason: new RegExp(`invalid ${eventType}`),
      deliveries: 1,
    };
  }

  async consumedBy(groups: string[], _stream: StreamName, entryId: string): Promise<boolean> {
    for (const group of groups) if ((await this.checkpointOf(group)) < Number(entryId)) return false;
    return true;
  }

  /** Moves the checkpoint of each group that reads them back to just before the first of them. */
  async redeliver(events: StoredEvent[]): Promise<void> {
    const first = Math.min(...events.map((event) => event.position));
    const groups = [...new Set(events.flatMap((event) => groupsReading(streamOf(event.event_type))))];
    const head = z
      .object({ head: z.coerce.number() })
      .parse((await this.pool.query('SELECT max(position) AS head FROM events')).rows[0]).head;
    for (const group of groups) {
      // Waits for a batch in flight (it holds the row), then goes back.
      await this.pool.query('UPDATE checkpoints SET position = least(position, $2) WHERE name = $1', [
        `bus:${group}`,
        first - 1,
      ]);
    }
    await eventually(
      () => Promise.all(groups.map((group) => this.checkpointOf(group))),
      (positions) => positions.every((position) => position >= head),
      { description: `groups ${groups.join(', ')} to read the store again up to ${head}` },
    );
  }

  async eventsInHand(): Promise<EventsInHand[]> {
    const inHand: EventsInHand[] = [];
    for (const [group, streams] of CONSUMER_GROUPS) {
      const checkpoint = await this.checkpointOf(group);
      // The services record each event they apply in their inbox; the saga, its commande's version.
      const applied =
        group === SAGA_CONSUMER
          ? await this.pool.query(
              `SELECT count(*) AS n FROM events AS e JOIN sagas AS s ON s.commande_id = e.aggregate_id
               WHERE e.position > $1 AND e.version <= s.version AND e.event_type = ANY($2::text[])`,
              [checkpoint, eventTypesOf(streams)],
            )
          : await this.pool.query(
              `SELECT count(*) AS n FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id
               WHERE i.consumer = $1 AND e.position > $2`,
              [group, checkpoint],
            );
      inHand.push({ group, stream: null, count: countSchema.parse(applied.rows[0]).n });
    }
    return inHand;
  }

  async eventsWaiting(stream: StreamName, group: string): Promise<number> {
    const waiting = await this.pool.query(
      'SELECT count(*) AS n FROM events WHERE position > $1 AND event_type = ANY($2::text[])',
      [await this.checkpointOf(group), eventTypesOf([stream])],
    );
    return countSchema.parse(waiting.rows[0]).n;
  }

  /**
   * A process of the group in the middle of a batch: it holds the group's checkpoint row locked (as the
   * reader does while it handles a batch) in a transaction it never finishes.
   */
  async ghostConsumer(group: string, stream: StreamName): Promise<GhostConsumer> {
    const name = `bus:${group}`;
    // Created outside the ghost's transaction, as the reader does: a live reader must not wait on it.
    await this.pool.query(
      'INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING',
      [name],
    );
    const ghost = new pg.Client({ connectionString: this.system.database.url });
    ghost.on('error', () => {});
    await ghost.connect();
    this.clients.add(ghost);
    const pid = z
      .object({ pid: z.number() })
      .parse((await ghost.query('SELECT pg_backend_pid() AS pid')).rows[0]).pid;
    const lockedByOthers = async () =>
      (await this.pool.query('SELECT 1 FROM checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED', [name]))
        .rowCount === 0;
    return {
      take: async () => {
        await ghost.query('BEGIN');
        await ghost.query('SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE', [name]);
        await eventually(
          async () => {
            const read = await ghost.query(
              `SELECT count(*) AS n FROM events
               WHERE position > (SELECT position FROM checkpoints WHERE name = $1)
                 AND event_type = ANY($2::text[])`,
              [name, eventTypesOf([stream])],
            );
            return countSchema.parse(read.rows[0]).n;
          },
          (count) => count > 0,
          { description: `events of ${stream} for the ghost consumer of ${group} to take` },
        );
      },
      holdsWork: lockedByOthers,
      // Its connection is cut, as when its process is killed: PostgreSQL rolls its transaction back.
      die: async () => {
        await this.pool.query('SELECT pg_terminate_backend($1)', [pid]);
        this.clients.delete(ghost);
      },
      // Its session is gone, and with it its lock (whoever holds the row now is alive).
      forgotten: async () =>
        (await this.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.clients].map((client) => client.end()));
    this.clients.clear();
  }
}

function eventTypesOf(streams: readonly StreamName[]): string[] {
  return Object.entries(STREAM_OF_EVENT_TYPE)
    .filter(([, stream]) => streams.includes(stream))
    .map(([eventType]) => eventType);
}
