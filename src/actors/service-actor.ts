import { z } from 'zod';
import { TransitionRefusedError } from '../domain/errors.js';
import type { SagaEnvelope, SagaEventType, StreamName } from '../domain/events.js';
import { crashPoint } from '../fault-injection.js';
import { type Pool, type PoolClient, withTransaction } from '../persistence/database.js';
import { EVENT_COLUMNS, toStoredEvent } from '../persistence/event-store.js';
import type { CommandeCache } from './commande/commande-cache.js';
import { CommandeSession, type LoadedCommande } from './commande/commande-stream.js';

/** A service that reacts to events: its state change and the events it emits commit together. */
export interface ServiceActor {
  /** Also the consumer group's name, and the inbox's consumer key. */
  readonly name: string;
  readonly streams: readonly StreamName[];
  /** The event types it reacts to; the others on its streams are acknowledged without a transaction. */
  readonly handles: readonly SagaEventType[];
  /** Runs inside the session's transaction; `session.tx` for the actor's own tables. */
  handle(session: CommandeSession, event: SagaEnvelope): Promise<void>;
  /**
   * Several events in one transaction, in order; by default `handle` for each. An actor implements it
   * to prepare for them all at once, e.g. to lock every row they will change in one statement.
   */
  handleAll?(session: CommandeSession, events: readonly SagaEnvelope[]): Promise<void>;
}

export type HandleOutcome = 'applied' | 'duplicate' | 'refused' | 'ignored';

const RECORD_HANDLED = 'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING';

const recordedRowSchema = z.object({ recorded: z.array(z.string()) });

/**
 * Records the events in the actor's inbox and reads the streams of their commandes, in one statement;
 * commandes the cache knows up to the event handled are not read. Returns the events not recorded before
 * (each once, in order), and a session holding their commandes.
 */
async function recordAndLoad(
  tx: PoolClient,
  actor: ServiceActor,
  events: readonly SagaEnvelope[],
  cache: CommandeCache | null,
): Promise<{ fresh: SagaEnvelope[]; session: CommandeSession }> {
  const latestVersions = new Map<string, number>();
  for (const { aggregate_id, version } of events) {
    latestVersions.set(aggregate_id, Math.max(version, latestVersions.get(aggregate_id) ?? 0));
  }
  const cached: LoadedCommande[] = [];
  const commandeIds: string[] = [];
  for (const [commandeId, version] of latestVersions) {
    const commande = cache?.atLeast(commandeId, version);
    if (commande) cached.push(commande);
    else commandeIds.push(commandeId);
  }
  // The ids recorded come on the first row only: repeated on every row of a large batch, their array
  // was most of what the driver parsed. An event at or below where the inbox was pruned is not recorded:
  // every group had handled it (a consumer that held it while another one took it over and applied it,
  // say through a network partition, hands it in after its row went), so it is a duplicate.
  const result = await tx.query(
    `WITH recorded AS (
       INSERT INTO inbox (consumer, event_id)
       SELECT $1, delivered.event_id FROM unnest($2::uuid[], $4::bigint[]) AS delivered(event_id, position)
       WHERE delivered.position > coalesce((SELECT position FROM inbox_pruned), 0)
       ON CONFLICT DO NOTHING RETURNING event_id
     )
     SELECT CASE WHEN e.row_number IS NULL OR e.row_number = 1
              THEN (SELECT coalesce(array_agg(event_id::text), '{}') FROM recorded) END AS recorded, e.*
     FROM (SELECT 1) AS one
     LEFT JOIN LATERAL (
       SELECT ${EVENT_COLUMNS}, row_number() OVER (ORDER BY aggregate_id, version)
       FROM events WHERE aggregate_id = ANY($3::text[])
     ) AS e ON true
     ORDER BY e.row_number`,
    [actor.name, events.map((event) => event.event_id), commandeIds, events.map((event) => event.position)],
  );
  const { recorded } = recordedRowSchema.parse(result.rows[0]);
  const notSeenBefore = new Set(recorded.map((id) => id.toLowerCase()));
  const session = new CommandeSession(tx);
  session.adopt(cached);
  const read = session.seed(
    commandeIds,
    result.rows
      .filter((row) => row.position !== null)
      .map(({ recorded: _, row_number: __, ...row }) => toStoredEvent(row)),
  );
  if (cache) for (const commande of read) cache.remember(commande);
  // `delete` keeps an event delivered twice within the batch from being applied twice.
  const fresh = events.filter((event) => notSeenBefore.delete(event.event_id.toLowerCase()));
  return { fresh, session };
}

/**
 * Applies an event exactly once per actor: the inbox row, the actor's own changes and the events it
 * appends are one transaction. An event the order machine refuses changes nothing (its transaction is
 * rolled back whole) but is then marked as handled on its own, so that it is not delivered forever.
 * With a cache, the event is first taken as its commande's next step, and the commande is read from the
 * cache if it knows it that far; a failure forgets it, so that a retry reads the store, and a commande
 * left in a final state is let go.
 */
export async function handleOnce(
  pool: Pool,
  actor: ServiceActor,
  event: SagaEnvelope,
  cache: CommandeCache | null = null,
): Promise<HandleOutcome> {
  cache?.observe(event);
  const outcome = await applyOnce(pool, actor, event, cache);
  cache?.releaseFinished([event.aggregate_id]);
  return outcome;
}

async function applyOnce(
  pool: Pool,
  actor: ServiceActor,
  event: SagaEnvelope,
  cache: CommandeCache | null,
): Promise<HandleOutcome> {
  if (!actor.handles.includes(event.event_type)) return 'ignored';
  try {
    return await withTransaction(pool, async (tx): Promise<HandleOutcome> => {
      const { fresh, session } = await recordAndLoad(tx, actor, [event], cache);
      if (fresh.length === 0) return 'duplicate';
      await actor.handle(session, event);
      session.flush();
      crashPoint('consumer.before-commit');
      return 'applied';
    });
  } catch (error) {
    // What this process remembered of the commande may be behind (a lost race): the retry reads the store.
    cache?.forget([event.aggregate_id]);
    if (!(error instanceof TransitionRefusedError)) throw error;
    if (cache) return applyOnce(pool, actor, event, null);
    // Refusals are rare (a late service, a redelivery after the commande moved on): one more statement
    // then is cheaper than a savepoint in every transaction.
    await pool.query(RECORD_HANDLED, [actor.name, event.event_id]);
    return 'refused';
  }
}

/**
 * Applies a batch of events in stream order as one transaction: one statement records them all in the
 * inbox and reads their commandes, one writes every event they append, and one commit, instead of one of
 * each per event. All or nothing: any failure (a refusal, a lost race) rolls the batch back and throws,
 * and the caller then applies its events one by one with `handleOnce`, which knows how to settle each
 * case.
 */
export async function handleBatchOnce(
  pool: Pool,
  actor: ServiceActor,
  events: readonly SagaEnvelope[],
  cache: CommandeCache | null = null,
): Promise<void> {
  // Every event read, handled or not: each is the next step of its commande for the services after.
  for (const event of events) cache?.observe(event);
  await applyBatchOnce(pool, actor, events, cache);
  cache?.releaseFinished(events.map((event) => event.aggregate_id));
}

async function applyBatchOnce(
  pool: Pool,
  actor: ServiceActor,
  events: readonly SagaEnvelope[],
  cache: CommandeCache | null,
): Promise<void> {
  const handled = events.filter((event) => actor.handles.includes(event.event_type));
  if (handled.length === 0) return;
  try {
    await withTransaction(pool, async (tx) => {
      const { fresh, session } = await recordAndLoad(tx, actor, handled, cache);
      if (fresh.length === 0) return;
      if (actor.handleAll) await actor.handleAll(session, fresh);
      else for (const event of fresh) await actor.handle(session, event);
      session.flush();
      crashPoint('consumer.before-commit');
    });
  } catch (error) {
    cache?.forget(handled.map((event) => event.aggregate_id));
    throw error;
  }
}
