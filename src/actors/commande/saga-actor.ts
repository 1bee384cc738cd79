import { z } from 'zod';
import { RecentMap } from '../../collections/recent-map.js';
import { VersionConflictError } from '../../domain/errors.js';
import { parseSagaEnvelope, type SagaEnvelope, type StreamName } from '../../domain/events.js';
import { commandeMachine } from '../../machines/commande.machine.js';
import { applyEvent, type CommandeStatut, isFinalStatut, statutOf } from '../../machines/commande-replay.js';
import type { Pool } from '../../persistence/database.js';
import { readStreams } from '../../persistence/event-store.js';

export const SAGA_CONSUMER = 'commande-saga';
export const SAGA_STREAMS: readonly StreamName[] = [
  'commande.evenements',
  'stock.evenements',
  'paiement.evenements',
  'vente.evenements',
];

const sagaRowSchema = z.object({
  statut: z.string(),
  raison: z.string().nullable(),
  version: z.number().int(),
  started_at: z.date(),
});
type SagaRow = z.infer<typeof sagaRowSchema>;

/**
 * The rows this process last wrote, so that the next event of a commande in flight costs one statement
 * instead of two. A cached row can only be behind (another process advanced the saga): the
 * compare-and-set then fails, the entry is dropped, and the retry reads the row afresh. Final sagas
 * leave the cache, and it holds at most `capacity` rows, so memory does not grow with history.
 */
export class SagaRowCache {
  private readonly rows: RecentMap<string, SagaRow>;

  constructor(capacity = 10_000) {
    this.rows = new RecentMap(capacity);
  }

  get(commandeId: string): SagaRow | undefined {
    return this.rows.get(commandeId);
  }

  remember(commandeId: string, row: SagaRow): void {
    this.rows.set(commandeId, row);
  }

  forget(commandeId: string): void {
    this.rows.delete(commandeId);
  }
}

export interface SagaTransition {
  commandeId: string;
  eventType: string;
  statut: CommandeStatut;
  raison: string | null;
  final: boolean;
  startedAt: Date;
  at: Date;
}

export interface SagaStep {
  transitions: SagaTransition[];
  refused: string[];
}

/** States in which a commande waits on a service; past its deadline there, it expires. */
export const EXPIRABLE_STATUTS: readonly CommandeStatut[] = [
  'en_attente_stock',
  'stock_reserve',
  'paiement_accepte',
];

interface SagaWrite {
  commandeId: string;
  row: SagaRow;
  final: boolean;
  updatedAt: Date;
  deadlineAt: Date | null;
  /** The version the row was read at (0: no row yet); the write happens only if it is still there. */
  expected: number;
  /** The state at that version (null: no row yet), which the write takes out of its count. */
  left: string | null;
}

/**
 * The saga actors of the commandes a batch of notifications is about: each follows its commande's events
 * through the order machine and persists the transition. A notification is applied as it is when it is
 * the very next version (the usual case); otherwise (entries from four streams arriving out of order, a
 * redelivery) the actor reads what follows the version it has reached from the event store, so no step
 * is skipped or repeated.
 *
 * No transaction: the rows are read (or taken from the cache), then written in one statement with a
 * compare-and-set on the version each was read at. The notifications of a commande whose row another
 * writer moved first come back in `leftOver`, to be applied again from a fresh read.
 */
export async function advanceSagas(
  pool: Pool,
  notifications: readonly SagaEnvelope[],
  deadlineMs: number,
  cache: SagaRowCache,
  { presumeNew = true }: { presumeNew?: boolean } = {},
): Promise<SagaStep & { leftOver: SagaEnvelope[] }> {
  const byCommande = new Map<string, SagaEnvelope[]>();
  for (const notification of notifications) {
    const list = byCommande.get(notification.aggregate_id) ?? [];
    list.push(notification);
    byCommande.set(notification.aggregate_id, list);
  }
  // A commande whose first event is here has no row yet, unless this is a redelivery: its row is not
  // read, and the insert that then finds one hands its notifications back in `leftOver`.
  const toRead = [...byCommande]
    .filter(
      ([commandeId, received]) =>
        !presumeNew || cache.get(commandeId) || !received.some((event) => event.version === 1),
    )
    .map(([commandeId]) => commandeId);
  const rows = await readSagaRows(pool, toRead, cache);
  const pending = new Map<string, SagaEnvelope[]>();
  const toReadFromStore: string[] = [];
  for (const [commandeId, received] of byCommande) {
    const reached = rows.get(commandeId)?.version ?? 0;
    const next = nextContiguous(received, reached);
    if (next === null) toReadFromStore.push(commandeId);
    else if (next.length > 0) pending.set(commandeId, next);
  }
  for (const event of (await readStreams(pool, toReadFromStore)).map(parseSagaEnvelope)) {
    if (event.version <= (rows.get(event.aggregate_id)?.version ?? 0)) continue;
    pending.set(event.aggregate_id, [...(pending.get(event.aggregate_id) ?? []), event]);
  }

  const step: SagaStep & { leftOver: SagaEnvelope[] } = { transitions: [], refused: [], leftOver: [] };
  const folds: (SagaStep & { write: SagaWrite })[] = [];
  for (const [commandeId, events] of pending) {
    const folded = foldSaga(commandeId, rows.get(commandeId) ?? null, events, deadlineMs);
    if (folded.write) folds.push({ ...folded, write: folded.write });
    else step.refused.push(...folded.refused);
  }
  const written = await writeSagaRows(
    pool,
    folds.map((fold) => fold.write),
  );
  for (const { write, transitions, refused } of folds) {
    // A lost race counts nothing: its notifications are folded again, and counted then.
    if (!written.has(write.commandeId)) {
      cache.forget(write.commandeId);
      step.leftOver.push(...(byCommande.get(write.commandeId) ?? []));
      continue;
    }
    step.transitions.push(...transitions);
    step.refused.push(...refused);
    if (write.final) cache.forget(write.commandeId);
    else cache.remember(write.commandeId, write.row);
  }
  return step;
}

/**
 * One notification: like `advanceSagas`, but a lost race is thrown, for the consumer to retry. A first
 * event whose row turns out to exist (a redelivery) is applied again at once, from the row.
 */
export async function advanceSaga(
  pool: Pool,
  notification: SagaEnvelope,
  deadlineMs: number,
  cache: SagaRowCache = new SagaRowCache(0),
): Promise<SagaStep> {
  let { leftOver, ...step } = await advanceSagas(pool, [notification], deadlineMs, cache);
  if (leftOver.length > 0 && notification.version === 1) {
    ({ leftOver, ...step } = await advanceSagas(pool, [notification], deadlineMs, cache, {
      presumeNew: false,
    }));
  }
  if (leftOver.length > 0)
    throw new VersionConflictError(notification.aggregate_id, notification.version - 1);
  return step;
}

/** The notifications that follow `reached` without a hole, in order; null when some are missing. */
function nextContiguous(received: SagaEnvelope[], reached: number): SagaEnvelope[] | null {
  const byVersion = new Map(received.filter((e) => e.version > reached).map((e) => [e.version, e]));
  const next: SagaEnvelope[] = [];
  for (let version = reached + 1; next.length < byVersion.size; version += 1) {
    const event = byVersion.get(version);
    if (!event) return null;
    next.push(event);
  }
  return next;
}

function foldSaga(
  commandeId: string,
  row: SagaRow | null,
  events: SagaEnvelope[],
  deadlineMs: number,
): { transitions: SagaTransition[]; refused: string[]; write: SagaWrite | null } {
  let snapshot = row
    ? commandeMachine.resolveState({ value: row.statut as CommandeStatut, context: { raison: row.raison } })
    : null;
  let startedAt = row?.started_at ?? null;
  const transitions: SagaTransition[] = [];
  const refused: string[] = [];
  for (const event of events) {
    const result = applyEvent(snapshot, event);
    snapshot = result.snapshot;
    if (!result.accepted) {
      refused.push(event.event_type);
      continue;
    }
    startedAt ??= new Date(event.timestamp);
    const statut = statutOf(snapshot);
    transitions.push({
      commandeId,
      eventType: event.event_type,
      statut,
      raison: snapshot.context.raison,
      final: isFinalStatut(statut),
      startedAt,
      at: new Date(event.timestamp),
    });
  }
  const last = events.at(-1);
  if (!snapshot || !last || !startedAt) return { transitions, refused, write: null };
  const statut = statutOf(snapshot);
  const updatedAt = new Date(last.timestamp);
  return {
    transitions,
    refused,
    write: {
      commandeId,
      row: { statut, raison: snapshot.context.raison, version: last.version, started_at: startedAt },
      final: isFinalStatut(statut),
      updatedAt,
      // The deadline counts from the last progress, so a slow but moving saga is not cut short.
      deadlineAt: EXPIRABLE_STATUTS.includes(statut) ? new Date(updatedAt.getTime() + deadlineMs) : null,
      expected: row?.version ?? 0,
      left: row?.statut ?? null,
    },
  };
}

const writtenRowSchema = z.object({ commande_id: z.string() });
const sagaRowOfCommandeSchema = sagaRowSchema.extend(writtenRowSchema.shape);

/**
 * Writes every row whose version is still the one it was read at, and moves the count of commandes in
 * each state with them (counted in state order, so that two writers never wait on each other's counts in
 * opposite orders); returns the commandes written.
 */
async function writeSagaRows(pool: Pool, writes: SagaWrite[]): Promise<Set<string>> {
  if (writes.length === 0) return new Set();
  const result = await pool.query(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bool[],
                            $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::int[], $10::text[])
         AS i(commande_id, statut, raison, version, final, started_at, updated_at, deadline_at, expected, left_statut)
     ), updated AS (
       UPDATE sagas AS s
       SET statut = i.statut, raison = i.raison, version = i.version, final = i.final,
           updated_at = i.updated_at, deadline_at = i.deadline_at
       FROM input AS i
       WHERE i.expected > 0 AND s.commande_id = i.commande_id AND s.version = i.expected
       RETURNING s.commande_id, s.statut, i.left_statut
     ), inserted AS (
       INSERT INTO sagas (commande_id, statut, raison, version, final, started_at, updated_at, deadline_at)
       SELECT commande_id, statut, raison, version, final, started_at, updated_at, deadline_at
       FROM input WHERE expected = 0
       ON CONFLICT (commande_id) DO NOTHING
       RETURNING commande_id, statut
     ), counted AS (
       INSERT INTO saga_counts (statut, commandes)
       SELECT statut, sum(delta) FROM (
         SELECT statut, 1 AS delta FROM updated
         UNION ALL SELECT left_statut, -1 FROM updated
         UNION ALL SELECT statut, 1 FROM inserted
       ) AS moves
       GROUP BY statut HAVING sum(delta) <> 0 ORDER BY statut
       ON CONFLICT (statut) DO UPDATE SET commandes = saga_counts.commandes + excluded.commandes
     )
     SELECT commande_id FROM updated UNION ALL SELECT commande_id FROM inserted`,
    [
      writes.map((w) => w.commandeId),
      writes.map((w) => w.row.statut),
      writes.map((w) => w.row.raison),
      writes.map((w) => w.row.version),
      writes.map((w) => w.final),
      writes.map((w) => w.row.started_at),
      writes.map((w) => w.updatedAt),
      writes.map((w) => w.deadlineAt),
      writes.map((w) => w.expected),
      writes.map((w) => w.left),
    ],
  );
  return new Set(result.rows.map((row) => writtenRowSchema.parse(row).commande_id));
}

/** The rows of these commandes: from the cache when this process wrote them last, else in one read. */
async function readSagaRows(
  pool: Pool,
  commandeIds: string[],
  cache: SagaRowCache,
): Promise<Map<string, SagaRow>> {
  const rows = new Map<string, SagaRow>();
  const missing: string[] = [];
  for (const commandeId of commandeIds) {
    const cached = cache.get(commandeId);
    if (cached) rows.set(commandeId, cached);
    else missing.push(commandeId);
  }
  if (missing.length === 0) return rows;
  const found = await pool.query(
    'SELECT commande_id, statut, raison, version, started_at FROM sagas WHERE commande_id = ANY($1::text[])',
    [missing],
  );
  for (const row of found.rows) {
    const { commande_id, ...sagaRow } = sagaRowOfCommandeSchema.parse(row);
    rows.set(commande_id, sagaRow);
  }
  return rows;
}
