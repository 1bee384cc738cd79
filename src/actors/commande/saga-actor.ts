import { z } from 'zod';
import { VersionConflictError } from '../../domain/errors.js';
import { parseSagaEnvelope, type SagaEnvelope, type StreamName } from '../../domain/events.js';
import { commandeMachine } from '../../machines/commande.machine.js';
import { applyEvent, type CommandeStatut, isFinalStatut, statutOf } from '../../machines/commande-replay.js';
import type { Pool } from '../../persistence/database.js';
import { readStream } from '../../persistence/event-store.js';

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
  private readonly rows = new Map<string, SagaRow>();

  constructor(private readonly capacity = 10_000) {}

  get(commandeId: string): SagaRow | undefined {
    return this.rows.get(commandeId);
  }

  remember(commandeId: string, row: SagaRow): void {
    this.rows.delete(commandeId);
    this.rows.set(commandeId, row);
    if (this.rows.size > this.capacity) {
      const oldest = this.rows.keys().next().value;
      if (oldest !== undefined) this.rows.delete(oldest);
    }
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

/**
 * The saga actor of one commande: it follows the commande's events through the order machine and
 * persists each transition. The entry delivered is applied as it is when it is the very next version
 * (the usual case); otherwise (entries from four streams arriving out of order, a redelivery) the actor
 * reads what follows the version it has reached from the event store, so no step is skipped or repeated.
 *
 * No transaction: the row is read, then written with a compare-and-set on the version it was read at;
 * a concurrent writer makes this one fail with a VersionConflictError, which the consumer retries.
 */
export async function advanceSaga(
  pool: Pool,
  notification: SagaEnvelope,
  deadlineMs: number,
  cache: SagaRowCache = new SagaRowCache(0),
): Promise<SagaStep> {
  const commandeId = notification.aggregate_id;
  const row = cache.get(commandeId) ?? (await readSagaRow(pool, commandeId));
  const reached = row?.version ?? 0;
  const step: SagaStep = { transitions: [], refused: [] };
  if (notification.version <= reached) return step;
  const events =
    notification.version === reached + 1
      ? [notification]
      : (await readStream(pool, commandeId)).map(parseSagaEnvelope).filter((e) => e.version > reached);
  if (events.length === 0) return step;

  let snapshot = row
    ? commandeMachine.resolveState({ value: row.statut as CommandeStatut, context: { raison: row.raison } })
    : null;
  let startedAt = row?.started_at ?? null;
  for (const event of events) {
    const result = applyEvent(snapshot, event);
    snapshot = result.snapshot;
    if (!result.accepted) {
      step.refused.push(event.event_type);
      continue;
    }
    startedAt ??= new Date(event.timestamp);
    const statut = statutOf(snapshot);
    step.transitions.push({
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
  if (!snapshot || !last || !startedAt) return step;
  const statut = statutOf(snapshot);
  const updatedAt = new Date(last.timestamp);
  // The deadline counts from the last progress, so a slow but moving saga is not cut short.
  const deadlineAt = EXPIRABLE_STATUTS.includes(statut) ? new Date(updatedAt.getTime() + deadlineMs) : null;
  const written = await pool.query(
    `INSERT INTO sagas (commande_id, statut, raison, version, final, started_at, updated_at, deadline_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $9)
     ON CONFLICT (commande_id) DO UPDATE
     SET statut = $2, raison = $3, version = $4, final = $5, updated_at = $7, deadline_at = $9
     WHERE sagas.version = $8`,
    [
      commandeId,
      statut,
      snapshot.context.raison,
      last.version,
      isFinalStatut(statut),
      startedAt,
      updatedAt,
      reached,
      deadlineAt,
    ],
  );
  if (written.rowCount !== 1) {
    cache.forget(commandeId);
    throw new VersionConflictError(commandeId, reached);
  }
  if (isFinalStatut(statut)) cache.forget(commandeId);
  else {
    cache.remember(commandeId, {
      statut,
      raison: snapshot.context.raison,
      version: last.version,
      started_at: startedAt,
    });
  }
  return step;
}

async function readSagaRow(pool: Pool, commandeId: string): Promise<SagaRow | null> {
  const found = await pool.query(
    'SELECT statut, raison, version, started_at FROM sagas WHERE commande_id = $1',
    [commandeId],
  );
  return found.rows[0] ? sagaRowSchema.parse(found.rows[0]) : null;
}
