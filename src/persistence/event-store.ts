import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { VersionConflictError } from '../domain/errors.js';
import type { NewEvent, NewFactEvent, StoredEvent } from '../domain/events.js';
import { type Pool, type PoolClient, pgErrorCode } from './database.js';

type Queryable = Pool | PoolClient;

const eventRowSchema = z.object({
  position: z.number().int(),
  event_id: z.string(),
  event_type: z.string(),
  aggregate_id: z.string(),
  version: z.number().int(),
  occurred_at: z.date(),
  source: z.string(),
  correlation_id: z.string(),
  causation_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

function toStoredEvent(row: unknown): StoredEvent {
  const { occurred_at, ...rest } = eventRowSchema.parse(row);
  return { ...rest, timestamp: occurred_at.toISOString() };
}

const EVENT_COLUMNS =
  'position, event_id, event_type, aggregate_id, version, occurred_at, source, correlation_id, causation_id, data';

/**
 * Appends events to one aggregate's stream, provided it is still at `expectedVersion`.
 * Versions stay gapless: the insert happens only when the stream's last version is the expected one,
 * and the unique (aggregate_id, version) index turns a concurrent writer into a VersionConflictError.
 */
export async function appendToStream(
  tx: PoolClient,
  aggregateId: string,
  expectedVersion: number,
  events: readonly (NewEvent | NewFactEvent)[],
  correlationId: string = aggregateId,
): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  const params = [
    events.map(() => randomUUID()),
    events.map((event) => event.event_type),
    events.map((_, index) => expectedVersion + index + 1),
    events.map((event) => event.source),
    events.map((event) => event.causation_id),
    events.map((event) => JSON.stringify(event.data)),
    aggregateId,
    correlationId,
    expectedVersion,
  ];
  try {
    const result = await tx.query(
      `WITH current_version AS (
         SELECT coalesce(max(version), 0) AS version FROM events WHERE aggregate_id = $7
       )
       INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, causation_id, data)
       SELECT e.event_id, e.event_type, $7, e.version, e.source, $8, e.causation_id, e.data
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::uuid[], $6::jsonb[])
              AS e(event_id, event_type, version, source, causation_id, data),
            current_version
       WHERE current_version.version = $9
       RETURNING ${EVENT_COLUMNS}`,
      params,
    );
    if (result.rowCount !== events.length) throw new VersionConflictError(aggregateId, expectedVersion);
    return result.rows.map(toStoredEvent).sort((a, b) => a.version - b.version);
  } catch (error) {
    if (pgErrorCode(error) === '23505') throw new VersionConflictError(aggregateId, expectedVersion);
    throw error;
  }
}

export async function readStream(db: Queryable, aggregateId: string): Promise<StoredEvent[]> {
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_id = $1 ORDER BY version`,
    [aggregateId],
  );
  return result.rows.map(toStoredEvent);
}

export interface ReadAllOptions {
  after: number;
  limit: number;
  aggregateId?: string | undefined;
}

/** Committed events in global order. For a reader that checkpoints, use readAllGapSafe instead. */
export async function readAll(
  db: Queryable,
  { after, limit, aggregateId }: ReadAllOptions,
): Promise<StoredEvent[]> {
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events
     WHERE position > $1 AND ($3::text IS NULL OR aggregate_id = $3)
     ORDER BY position LIMIT $2`,
    [after, limit, aggregateId ?? null],
  );
  return result.rows.map(toStoredEvent);
}

/** Where a checkpointed reader is: the last row it handled, in commit order. */
export interface CommitOrderPosition {
  transactionId: string;
  position: number;
}

export const START_OF_STORE: CommitOrderPosition = { transactionId: '0', position: 0 };

const commitOrderRowSchema = eventRowSchema.extend({ transaction_id: z.string() });

/**
 * Events after `after` in (transaction_id, position) order, stopping short of every row whose
 * transaction began after the oldest one still in flight. Such rows may still be joined by rows that
 * commit later with a lower position, so a reader that moved past them would skip those for good.
 */
export async function readAllGapSafe(
  db: Queryable,
  after: CommitOrderPosition,
  limit: number,
): Promise<{ events: StoredEvent[]; last: CommitOrderPosition | null }> {
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS}, transaction_id::text AS transaction_id FROM events
     WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY transaction_id, position LIMIT $3`,
    [after.transactionId, after.position, limit],
  );
  const rows = result.rows.map((row) => commitOrderRowSchema.parse(row));
  const lastRow = rows.at(-1);
  return {
    events: rows.map(({ transaction_id: _, ...row }) => toStoredEvent(row)),
    last: lastRow ? { transactionId: lastRow.transaction_id, position: lastRow.position } : null,
  };
}

export async function streamVersion(db: Queryable, aggregateId: string): Promise<number> {
  const result = await db.query(
    'SELECT coalesce(max(version), 0) AS version FROM events WHERE aggregate_id = $1',
    [aggregateId],
  );
  return z.object({ version: z.number() }).parse(result.rows[0]).version;
}

export async function lastPosition(db: Queryable): Promise<number> {
  const result = await db.query('SELECT coalesce(max(position), 0) AS position FROM events');
  return z.object({ position: z.number() }).parse(result.rows[0]).position;
}
