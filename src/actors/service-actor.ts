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

/**
 * Applies an event exactly once per actor: the inbox row, the actor's own changes and the events it
 * appends are one transaction. An event the order machine refuses changes nothing but is still marked
 * as handled, so that it is not delivered forever.
 */
export async function handleOnce(
  pool: Pool,
  actor: ServiceActor,
  event: SagaEnvelope,
): Promise<HandleOutcome> {
  if (!actor.handles.includes(event.event_type)) return 'ignored';
  return withTransaction(pool, async (tx) => {
    const inserted = await tx.query(
      'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [actor.name, event.event_id],
    );
    if (inserted.rowCount === 0) return 'duplicate';
    await tx.query('SAVEPOINT handler');
    try {
      await actor.handle(tx, event);
      crashPoint('consumer.before-commit');
      return 'applied';
    } catch (error) {
      if (!(error instanceof TransitionRefusedError)) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT handler');
      return 'refused';
    }
  });
}
