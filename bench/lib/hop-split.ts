import type { Redis } from 'ioredis';
import type pg from 'pg';
import { z } from 'zod';
import { StreamKeys } from '../../src/bus/redis-streams/stream-keys.js';
import { STREAM_NAMES } from '../../src/domain/events.js';
import { type Percentiles, percentiles } from './stats.js';

/**
 * Where a saga's time goes between two of its events. A stream entry's id carries the time of its XADD
 * (ms), and an event's `occurred_at` the time of its insert, so each hop splits in two:
 * - published: from an event's insert to its XADD by the relay (the append's commit, the relay's
 *   wake-up, its read of the store);
 * - handled: from that XADD to the insert of the commande's next event (the next service's read of the
 *   stream, its transaction up to the append).
 * Both clocks are this machine's; the XADD side is to the millisecond. Redis bus only: on the PostgreSQL
 * bus the consumers read the event store itself, and there is no publication to split a hop at.
 */
export interface HopSplit {
  published: Percentiles;
  handled: Percentiles;
}

const eventRowSchema = z.object({
  event_id: z.string(),
  aggregate_id: z.string(),
  version: z.number().int(),
  inserted_ms: z.number(),
});

/** The hops of the events appended after `afterPosition`, published since `sinceMs`. */
export async function measureHopSplit(
  pool: pg.Pool,
  redis: Redis,
  streamPrefix: string,
  afterPosition: number,
  sinceMs: number,
): Promise<HopSplit> {
  const keys = new StreamKeys(streamPrefix);
  const publishedAt = new Map<string, number>();
  for (const name of STREAM_NAMES) {
    const entries = await redis.xrange(keys.stream(name), String(Math.floor(sinceMs)), '+');
    for (const [id, fields] of entries) {
      const eventId = fields[fields.indexOf('event_id') + 1];
      if (eventId) publishedAt.set(eventId, Number(id.split('-')[0]));
    }
  }
  const result = await pool.query(
    `SELECT event_id::text, aggregate_id, version, (extract(epoch FROM occurred_at) * 1000)::float8 AS inserted_ms
       FROM events WHERE position > $1 ORDER BY aggregate_id, version`,
    [afterPosition],
  );
  const events = result.rows.map((row) => eventRowSchema.parse(row));
  const published: number[] = [];
  const handled: number[] = [];
  events.forEach((event, index) => {
    const xadd = publishedAt.get(event.event_id);
    if (xadd === undefined) return;
    published.push(xadd - event.inserted_ms);
    const next = events[index + 1];
    if (next?.aggregate_id === event.aggregate_id && next.version === event.version + 1) {
      handled.push(next.inserted_ms - xadd);
    }
  });
  return { published: percentiles(published), handled: percentiles(handled) };
}

/**
 * Entries in the saga streams under a prefix: how much the Redis bus carried in a run (entries every group
 * acknowledged leave after STREAM_RETENTION_MS, so a long run counts its last minutes). 0 when the events
 * went another way.
 */
export async function redisStreamEntries(redis: Redis, streamPrefix: string): Promise<number> {
  const keys = new StreamKeys(streamPrefix);
  let total = 0;
  for (const name of STREAM_NAMES) total += await redis.xlen(keys.stream(name));
  return total;
}
