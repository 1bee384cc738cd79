import type { Logger } from 'pino';
import { z } from 'zod';
import type { StoredEvent } from '../domain/events.js';
import { type Pool, type PoolClient, withTransaction } from './database.js';
import { type CommitOrderPosition, readAllGapSafe } from './event-store.js';
import type { EventStoreNotifier } from './event-store-notifier.js';

export interface CheckpointedReaderOptions {
  /** Names the checkpoint; one reader of a given name runs at a time across all processes. */
  name: string;
  pool: Pool;
  notifier: EventStoreNotifier;
  logger: Logger;
  /** Handles a batch inside the transaction that also moves the checkpoint. */
  handle: (tx: PoolClient, events: StoredEvent[]) => Promise<void>;
  /**
   * Asked before each batch, with the checkpoint read: a position to read from instead (e.g. the start
   * of the store, when what was delivered downstream has been lost), or null to go on.
   */
  rewind?: (checkpoint: CommitOrderPosition) => Promise<CommitOrderPosition | null>;
  batchSize?: number;
  /** Fallback when a notification is missed (e.g. while the listener reconnects). */
  pollIntervalMs?: number;
}

export type BatchOutcome =
  | { kind: 'handled'; count: number; position: number }
  | { kind: 'busy' }
  | { kind: 'idle' };

const checkpointRowSchema = z.object({ transaction_id: z.string(), position: z.number().int() });

/**
 * Reads the event store in commit order from a durable checkpoint. The handler's effects and the new
 * checkpoint commit together, so a crash replays at most the batch that was not committed.
 */
export class CheckpointedReader {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;

  constructor(private readonly options: CheckpointedReaderOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.options.notifier.subscribe(this.onNotification);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.options.notifier.unsubscribe(this.onNotification);
    this.wake?.();
    await this.loop;
  }

  /** One batch; exposed so tests and rebuilds can drive the reader step by step. */
  async processBatch(): Promise<BatchOutcome> {
    const { pool, name, handle } = this.options;
    return withTransaction(pool, async (tx) => {
      const lock = await tx.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked', [
        `checkpoint:${name}`,
      ]);
      if (lock.rows[0]?.locked !== true) return { kind: 'busy' };
      await tx.query(
        'INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING',
        [name],
      );
      const checkpoint = checkpointRowSchema.parse(
        (await tx.query('SELECT transaction_id::text, position FROM checkpoints WHERE name = $1', [name]))
          .rows[0],
      );
      const stored = { transactionId: checkpoint.transaction_id, position: checkpoint.position };
      const from = (await this.options.rewind?.(stored)) ?? stored;
      const { events, last } = await readAllGapSafe(tx, from, this.batchSize);
      if (!last) return { kind: 'idle' };
      await handle(tx, events);
      await tx.query('UPDATE checkpoints SET transaction_id = $2::xid8, position = $3 WHERE name = $1', [
        name,
        last.transactionId,
        last.position,
      ]);
      return { kind: 'handled', count: events.length, position: last.position };
    });
  }

  private readonly onNotification = (): void => {
    this.wake?.();
  };

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let outcome: BatchOutcome;
      try {
        outcome = await this.processBatch();
        failures = 0;
      } catch (error) {
        failures += 1;
        this.options.logger.error(
          { err: error, reader: this.options.name },
          'event store reader failed, retrying',
        );
        outcome = { kind: 'idle' };
      }
      if (outcome.kind === 'handled' && outcome.count === this.batchSize) continue;
      const backoff = failures > 0 ? Math.min(200 * 2 ** failures, 5_000) : this.pollIntervalMs;
      await this.sleepUntilWoken(backoff);
    }
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }
}
