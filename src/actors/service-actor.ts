import { z } from 'zod';
import { TransitionRefusedError } from '../domain/errors.js';
import type { SagaEnvelope, SagaEventType, StreamName } from '../domain/events.js';
import { crashPoint } from '../fault-injection.js';
import { type Pool, withTransaction } from '../persistence/database.js';
import { CommandeSession } from './commande/commande-stream.js';

/** A service that reacts to events: its state change and the events it emits commit together. */
export interface ServiceActor {
  /** Also the consumer group's name, and the inbox's consumer key. */
  readonly name: string;
  readonly streams: readonly StreamName[];
  /** The event types it reacts to; the others on its streams are acknowledged without a transaction. */
  readonly handles: readonly SagaEventType[];
  /** Runs inside the session's transaction; `session.tx` for the actor's own tables. */
  handle(session: CommandeSession, event: SagaEnvelope): Promise<void>;
}

export type HandleOutcome = 'applied' | 'duplicate' | 'refused' | 'ignored';

const RECORD_HANDLED = 'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING';
const RECORD_ALL_HANDLED = `INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])
   ON CONFLICT DO NOTHING RETURNING event_id`;

const recordedRowSchema = z.object({ event_id: z.string() });

/**
 * Applies an event exactly once per actor: the inbox row, the actor's own changes and the events it
 * appends are one transaction. An event the order machine refuses changes nothing (its transaction is
 * rolled back whole) but is then marked as handled on its own, so that it is not delivered forever.
 */
export async function handleOnce(
  pool: Pool,
  actor: ServiceActor,
  event: SagaEnvelope,
): Promise<HandleOutcome> {
  if (!actor.handles.includes(event.event_type)) return 'ignored';
  try {
    return await withTransaction(pool, async (tx): Promise<HandleOutcome> => {
      const inserted = await tx.query(RECORD_HANDLED, [actor.name, event.event_id]);
      if (inserted.rowCount === 0) return 'duplicate';
      const session = new CommandeSession(tx);
      await actor.handle(session, event);
      await session.flush();
      crashPoint('consumer.before-commit');
      return 'applied';
    });
  } catch (error) {
    if (!(error instanceof TransitionRefusedError)) throw error;
    // Refusals are rare (a late service, a redelivery after the commande moved on): one more statement
    // then is cheaper than a savepoint in every transaction.
    await pool.query(RECORD_HANDLED, [actor.name, event.event_id]);
    return 'refused';
  }
}

/**
 * Applies a batch of events in stream order as one transaction: one inbox statement and one read of the
 * commandes for the whole batch, and one commit, instead of one of each per event. All or nothing: any
 * failure (a refusal, a lost race) rolls the batch back and throws, and the caller then applies its
 * events one by one with `handleOnce`, which knows how to settle each case.
 */
export async function handleBatchOnce(
  pool: Pool,
  actor: ServiceActor,
  events: readonly SagaEnvelope[],
): Promise<void> {
  const handled = events.filter((event) => actor.handles.includes(event.event_type));
  if (handled.length === 0) return;
  await withTransaction(pool, async (tx) => {
    const recorded = await tx.query(RECORD_ALL_HANDLED, [actor.name, handled.map((e) => e.event_id)]);
    const fresh = new Set(recorded.rows.map((row) => recordedRowSchema.parse(row).event_id.toLowerCase()));
    // `delete` keeps an event delivered twice within the batch from being applied twice.
    const toApply = handled.filter((event) => fresh.delete(event.event_id.toLowerCase()));
    const session = new CommandeSession(tx);
    await session.preload(toApply.map((event) => event.aggregate_id));
    for (const event of toApply) await actor.handle(session, event);
    await session.flush();
    crashPoint('consumer.before-commit');
  });
}
