import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { POSTGRES_BUS_PUBLISHED_CHECKPOINT } from '../bus/postgres/postgres-bus.js';
import { OUTBOX_RELAY_CHECKPOINT } from '../bus/redis-streams/outbox-relay.js';
import type { Pool } from '../persistence/database.js';
import { METRIC } from './metrics.js';
import type { ScrapeProbe } from './scrape-probe.js';

export interface EventStoreLag {
  /** The last position in the event store (0 when it is empty). */
  head: number;
  /** Events the outbox relay has not published yet. */
  relayLag: number;
  /** Events each projection has not applied yet, by checkpoint name. */
  projectionLags: Map<string, number>;
}

/** Counting stops there: a reader that far behind is an emergency, whatever the exact number. */
export const MAX_COUNTED_LAG = 100_000;

const rowSchema = z.object({ head: z.number().int(), name: z.string(), behind: z.number().int() });

function isBusCheckpoint(name: string): boolean {
  return (
    name.startsWith('bus:') || name === OUTBOX_RELAY_CHECKPOINT || name === POSTGRES_BUS_PUBLISHED_CHECKPOINT
  );
}

/**
 * How many events each reader of the event store (the bus's publisher, the projections) has still to
 * handle: the rows after its checkpoint's position, the order it reads them in. A publisher that never
 * ran has no checkpoint yet and counts as behind by every event.
 */
export async function readEventStoreLag(
  pool: Pool,
  publisherCheckpoint: string = OUTBOX_RELAY_CHECKPOINT,
): Promise<EventStoreLag> {
  const result = await pool.query(
    `WITH readers AS (
       SELECT name, position FROM checkpoints
       UNION ALL
       SELECT $1, 0 WHERE NOT EXISTS (SELECT 1 FROM checkpoints WHERE name = $1)
     )
     SELECT (SELECT coalesce(max(position), 0) FROM events)::bigint AS head,
            r.name,
            (SELECT count(*) FROM (
               SELECT 1 FROM events AS e
                WHERE e.position > r.position
                LIMIT $2) AS unread)::int AS behind
       FROM readers AS r`,
    [publisherCheckpoint, MAX_COUNTED_LAG],
  );
  const rows = result.rows.map((raw) => rowSchema.parse(raw));
  const lag: EventStoreLag = { head: rows[0]?.head ?? 0, relayLag: 0, projectionLags: new Map() };
  for (const { name, behind } of rows) {
    if (name === publisherCheckpoint) lag.relayLag = behind;
    // The PostgreSQL bus's consumer groups are readers too; their lag is consumer_group_lag.
    else if (!isBusCheckpoint(name)) lag.projectionLags.set(name, behind);
  }
  return lag;
}

export function registerEventStoreLagMetrics(registry: Registry, probe: ScrapeProbe<EventStoreLag>): void {
  new Gauge({
    name: METRIC.eventStorePosition,
    help: 'Last position in the event store',
    registers: [registry],
    async collect() {
      const lag = await probe.sample();
      if (lag) this.set(lag.head);
      else this.remove();
    },
  });
  new Gauge({
    name: METRIC.relayLag,
    help: `Events appended to the event store that the bus has not published yet: the outbox relay to Redis, or the PostgreSQL bus's publication counter (counted up to ${MAX_COUNTED_LAG})`,
    registers: [registry],
    async collect() {
      const lag = await probe.sample();
      if (lag) this.set(lag.relayLag);
      else this.remove();
    },
  });
  new Gauge({
    name: METRIC.projectionLag,
    help: `Events appended to the event store that a projection has not applied yet (counted up to ${MAX_COUNTED_LAG})`,
    labelNames: ['projection'] as const,
    registers: [registry],
    async collect() {
      const lag = await probe.sample();
      this.reset();
      for (const [projection, behind] of lag?.projectionLags ?? []) this.set({ projection }, behind);
    },
  });
}
