import { TransitionRefusedError } from '../domain/errors.js';
import type { SagaEnvelope, SagaEventType, StreamName } from '../domain/events.js';
import { crashPoint } from '../fault-injection.js';
import { type Pool, type PoolClient, withTransaction } from '../persistence/database.js';

/** A service that reacts to events: its state change and the events it emits commit together. */
export interface ServiceActor {
  /** Also the consumer group's name, and the inbox's consumer key. */
  readonly name: string;
  readonly streams: readonly StreamName[];
  /** The event types it reacts to; the others on its streams are acknowledged without a transaction. */
  readonly handles: readonly SagaEventType[];
  handle(tx: PoolClient, event: SagaEnvelope): Promise<void>;
}

export type HandleOutcome = 'applied' | 'duplicate' | 'refused' | 'ignored';

const RECORD_HANDLED = 'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING';

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
      await actor.handle(tx, event);
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
