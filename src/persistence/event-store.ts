import { randomUUID } from 'node:crypto';
import pg, { type QueryResult } from 'pg';
import { z } from 'zod';
import { VersionConflictError } from '../domain/errors.js';
import type { NewEvent, NewFactEvent, StoredEvent } from '../domain/events.js';
import { eventsAppended, markEventsAppended, type Pool, type PoolClient, pgErrorCode } from './database.js';
import { heldFailureOf, holdStatement } from './statement-pipeline.js';

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

/** A row of `EVENT_COLUMNS`, validated. */
export function toStoredEvent(row: unknown): StoredEvent {
  const { occurred_at, ...rest } = eventRowSchema.parse(row);
  return { ...rest, timestamp: occurred_at.toISOString() };
}

export const EVENT_COLUMNS =
  'position, event_id, event_type, aggregate_id, version, occurred_at, source, correlation_id, causation_id, data';

export interface StreamAppend {
  aggregateId: string;
  /** The stream's version before these events: the append happens only if it is still that. */
  expectedVersion: number;
  events: readonly (NewEvent | NewFactEvent)[];
  /** Defaults to the aggregate id. */
  correlationId?: string;
}

/**
 * Appends events to one aggregate's stream, provided it is still at `expectedVersion`.
 * Given a transaction's client, the append is part of that transaction; given the pool, it is one
 * statement that is its own transaction (one round trip, no BEGIN/COMMIT).
 */
export async function appendToStream(
  tx: Queryable,
  aggregateId: string,
  expectedVersion: number,
  events: readonly (NewEvent | NewFactEvent)[],
  correlationId: string = aggregateId,
): Promise<StoredEvent[]> {
  return appendToStreams(tx, [{ aggregateId, expectedVersion, events, correlationId }]);
}

/**
 * An append statement around the SELECT of the rows to insert (event columns, then the transaction id
 * from `tx`; `$1` is the array of event ids): the transaction id taken first, the insert, and the check
 * that every event given was inserted.
 */
function appendStatementInserting(rows: string): string {
  return `WITH tx AS MATERIALIZED (
     SELECT pg_current_xact_id() AS id
   ), inserted AS (
     INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, causation_id, data, transaction_id)
     ${rows}
     RETURNING position, aggregate_id, version, occurred_at
   )
   SELECT position, aggregate_id, version, occurred_at FROM inserted
   UNION ALL
   SELECT NULL, NULL, stale_append(n, cardinality($1::uuid[])), NULL
   FROM (SELECT count(*) AS n FROM inserted) AS c
   WHERE n <> cardinality($1::uuid[])`;
}

// The transaction id is taken before the positions (readAllGapSafe relies on it: a position that is
// not visible yet belongs to a transaction older than any snapshot that sees a later position).
// Positions follow the order of the input, so each stream's events get increasing positions. Each event
// is inserted only if its stream's head is the version expected: the lookup runs in the statement's
// snapshot, which does not see the rows the statement itself inserts, so every event of a stream compares
// with the same head. A stream that is not at the version expected gets none of its events inserted, and
// the last SELECT, finding fewer rows inserted than given, fails the whole statement (stale_append
// raises). Checking the count rather than each stream's head again keeps the plan as cheap as the plain
// insert, and looking the head up per event rather than per distinct stream spares a grouping and a join:
// 16 % less time per statement for 4 and for 20 streams (docs/performance.md, seventh session).
const APPEND_STATEMENT = appendStatementInserting(
  `SELECT e.event_id, e.event_type, e.aggregate_id, e.version, e.source, e.correlation_id, e.causation_id, e.data, tx.id
   FROM tx, unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::uuid[],
                   $8::jsonb[], $9::int[]) WITH ORDINALITY
     AS e(event_id, event_type, aggregate_id, version, source, correlation_id, causation_id, data, expected, ord)
   WHERE e.expected = (SELECT coalesce(max(version), 0) FROM events AS h WHERE h.aggregate_id = e.aggregate_id)
   ORDER BY e.ord`,
);

/**
 * The same append for one stream, the common case (a command's events): its id, correlation and expected
 * version travel once rather than once per event, and its head is looked up once. One writer appending
 * batches of 5 went from 12,000 to 15,000 events/s with it, and it stays 10-20 % faster than the
 * several-stream statement given one stream (docs/performance.md, seventh session).
 */
const ONE_STREAM_APPEND_STATEMENT = appendStatementInserting(
  `SELECT e.event_id, e.event_type, $3::text, $8::int + e.ord::int, e.source, $5::text, e.causation_id, e.data, tx.id
   FROM tx, unnest($1::uuid[], $2::text[], $4::text[], $6::uuid[], $7::jsonb[]) WITH ORDINALITY
     AS e(event_id, event_type, source, causation_id, data, ord)
   WHERE (SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = $3::text) = $8::int
   ORDER BY e.ord`,
);

const appendedRowSchema = z.object({
  position: z.number().int(),
  aggregate_id: z.string(),
  version: z.number().int(),
  occurred_at: z.date(),
});

interface PlannedEvent {
  event: NewEvent | NewFactEvent;
  event_id: string;
  aggregate_id: string;
  version: number;
  correlation_id: string;
  payload: string;
  expected: number;
}

function plan(appends: readonly StreamAppend[]): PlannedEvent[] {
  return appends.flatMap(({ aggregateId, expectedVersion, events, correlationId }) =>
    events.map((event, index) => ({
      event,
      event_id: randomUUID(),
      aggregate_id: aggregateId,
      version: expectedVersion + index + 1,
      correlation_id: correlationId ?? aggregateId,
      payload: JSON.stringify(event.data),
      expected: expectedVersion,
    })),
  );
}

/** The statement and its parameters: the one-stream form when there is one stream. */
function appendStatement(
  appends: readonly StreamAppend[],
  planned: readonly PlannedEvent[],
): { text: string; values: unknown[] } {
  const [only] = appends;
  if (appends.length === 1 && only) {
    return {
      text: ONE_STREAM_APPEND_STATEMENT,
      values: [
        planned.map((p) => p.event_id),
        planned.map((p) => p.event.event_type),
        only.aggregateId,
        planned.map((p) => p.event.source),
        only.correlationId ?? only.aggregateId,
        planned.map((p) => p.event.causation_id),
        planned.map((p) => p.payload),
        only.expectedVersion,
      ],
    };
  }
  return { text: APPEND_STATEMENT, values: appendParameters(planned) };
}

function appendParameters(planned: readonly PlannedEvent[]): unknown[] {
  return [
    planned.map((p) => p.event_id),
    planned.map((p) => p.event.event_type),
    planned.map((p) => p.aggregate_id),
    planned.map((p) => p.version),
    planned.map((p) => p.event.source),
    planned.map((p) => p.correlation_id),
    planned.map((p) => p.event.causation_id),
    planned.map((p) => p.payload),
    planned.map((p) => p.expected),
  ];
}

/**
 * A stream was not at its expected version: stale_append raised (serialization_failure), or a
 * concurrent writer took the same version first (unique_violation).
 */
function asVersionConflict(error: unknown, appends: readonly StreamAppend[]): unknown {
  const code = pgErrorCode(error);
  if (code !== '40001' && code !== '23505') return error;
  const first = appends[0];
  return new VersionConflictError(first?.aggregateId ?? '?', first?.expectedVersion ?? 0);
}

/**
 * Appends to several streams in one statement, each provided it is still at its expected version; all
 * or nothing (else a VersionConflictError). Versions stay gapless: a stream's events are inserted only
 * when its last version is the expected one, and the unique (aggregate_id, version) index turns a
 * concurrent writer into a conflict too.
 */
export async function appendToStreams(
  tx: Queryable,
  appends: readonly StreamAppend[],
): Promise<StoredEvent[]> {
  const planned = plan(appends);
  if (planned.length === 0) return [];
  const { text, values } = appendStatement(appends, planned);
  let result: QueryResult;
  try {
    result = await tx.query(text, values);
  } catch (error) {
    // A statement held before the append failed, and the append carried its error: not a conflict.
    if (!(tx instanceof pg.Pool) && error === heldFailureOf(tx)) throw error;
    throw asVersionConflict(error, appends);
  }
  eventsAppended(tx);
  // Only what the database decided comes back; the rest is what was just written.
  const decided = new Map(
    result.rows
      .map((row) => appendedRowSchema.parse(row))
      .map((row) => [`${row.aggregate_id}\u0000${row.version}`, row]),
  );
  return planned.map((p) => {
    const row = decided.get(`${p.aggregate_id}\u0000${p.version}`);
    if (!row) throw new Error(`append to ${p.aggregate_id} returned no row for version ${p.version}`);
    return {
      position: row.position,
      event_id: p.event_id,
      event_type: p.event.event_type,
      aggregate_id: p.aggregate_id,
      version: p.version,
      timestamp: row.occurred_at.toISOString(),
      source: p.event.source,
      correlation_id: p.correlation_id,
      causation_id: p.event.causation_id,
      data: JSON.parse(p.payload) as Record<string, unknown>,
    };
  });
}

/**
 * The same append, held to go with the transaction's next statement or its COMMIT (`holdStatement`), for
 * a caller that needs nothing back. A conflict fails that statement with a VersionConflictError.
 */
export function holdAppend(tx: PoolClient, appends: readonly StreamAppend[]): void {
  const planned = plan(appends);
  if (planned.length === 0) return;
  const { text, values } = appendStatement(appends, planned);
  holdStatement(tx, text, values, (error) => asVersionConflict(error, appends));
  markEventsAppended(tx);
}

export async function readStream(db: Queryable, aggregateId: string): Promise<StoredEvent[]> {
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_id = $1 ORDER BY version`,
    [aggregateId],
  );
  return result.rows.map(toStoredEvent);
}

/** The streams of several aggregates in one statement, each in version order. */
export async function readStreams(db: Queryable, aggregateIds: readonly string[]): Promise<StoredEvent[]> {
  if (aggregateIds.length === 0) return [];
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_id = ANY($1::text[]) ORDER BY aggregate_id, version`,
    [aggregateIds],
  );
  return result.rows.map(toStoredEvent);
}

export interface ReadAllOptions {
  after: number;
  limit: number;
  aggregateId?: string | undefined;
}

/**
 * Committed events in global order, as a snapshot shows them now: for a look at the store (GET /events).
 * Not for a reader that moves a position past what it read: a later position can commit before an earlier
 * one, and that reader would skip the earlier event for good. It uses readAllGapSafe (the explorer's tail
 * does), or takeGapSafe on rows read in its own statement (CheckpointedReader, with its checkpoint row).
 */
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

/**
 * A hole in the positions: a row of a transaction still in flight, or a position its transaction
 * rolled back. `horizon` is a transaction id taken by the reader after the snapshot in which it first
 * saw the hole: every transaction that could still fill positions [from, upTo) had an id below it.
 */
export interface PositionGap {
  from: number;
  upTo: number;
  horizon: bigint;
}

export interface GapSafeBatch {
  events: StoredEvent[];
  /** Set when the read stopped at a hole that may still fill; pass it to the next read. */
  gap: PositionGap | null;
}

const snapshotRowSchema = z.object({ snapshot_xmin: z.string(), horizon: z.string() });

/**
 * The SELECT list that `takeGapSafe` expects before the event columns: the snapshot's xmin, and the
 * reader's own transaction id as the horizon. Not the snapshot's xmax: that is only the last finished id
 * plus one, so a transaction that got its id after that one finished, took a position, and is still
 * running can have an id at or above it; a later xmin that does not count it (it computes xmin only
 * over ids below its own xmax) would then pass its hole and skip its events for good. Writers take their
 * id before their positions, so a transaction holding a hole had its id before the snapshot that saw a
 * later position: an id taken after that snapshot is above it.
 */
export const GAP_SAFE_COLUMNS = `pg_snapshot_xmin(pg_current_snapshot())::text AS snapshot_xmin,
  pg_current_xact_id()::text AS horizon`;

/**
 * Events after `after` with no hole in their positions. Positions are taken at insert but become visible
 * at commit, so a later position can be visible before an earlier one: reading past the hole would skip
 * that event for good. A hole is passed only once every transaction that was running when it was first
 * seen has ended (a later snapshot's xmin reached the horizon recorded then): what is still missing then
 * was rolled back and never comes. The horizon is the reader's own transaction id: outside a transaction
 * each call takes one.
 */
export async function readAllGapSafe(
  db: Queryable,
  after: number,
  limit: number,
  knownGap: PositionGap | null = null,
): Promise<GapSafeBatch> {
  const result = await db.query(
    `SELECT ${GAP_SAFE_COLUMNS}, e.*
     FROM (SELECT 1) AS one
     LEFT JOIN LATERAL (
       SELECT ${EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2
     ) AS e ON true`,
    [after, limit],
  );
  return takeGapSafe(result.rows, after, knownGap);
}

/**
 * The gap-safe prefix of rows read as `readAllGapSafe` reads them: one row per event after `after` in
 * position order (or a single row of NULL events), each with the snapshot's xmin and the horizon.
 */
export function takeGapSafe(
  rows: readonly Record<string, unknown>[],
  after: number,
  knownGap: PositionGap | null,
): GapSafeBatch {
  const first = snapshotRowSchema.parse(rows[0]);
  const xmin = BigInt(first.snapshot_xmin);
  const horizon = BigInt(first.horizon);
  const events: StoredEvent[] = [];
  let expected = after + 1;
  for (const row of rows) {
    if (row.position === null) break;
    const { snapshot_xmin: _, horizon: __, ...columns } = row;
    const event = toStoredEvent(columns);
    if (event.position !== expected) {
      const sameHole = knownGap !== null && expected >= knownGap.from && event.position <= knownGap.upTo;
      const settled = sameHole && knownGap !== null && xmin >= knownGap.horizon;
      if (!settled) {
        return { events, gap: sameHole ? knownGap : { from: expected, upTo: event.position, horizon } };
      }
    }
    events.push(event);
    expected = event.position + 1;
  }
  return { events, gap: null };
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
