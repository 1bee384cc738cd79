import type { Logger } from 'pino';
import { z } from 'zod';
import type { StoredEvent } from '../domain/events.js';
import { type Pool, type PoolClient, withTransaction } from './database.js';
import { type PositionGap, readAllGapSafe } from './event-store.js';
import type { EventStoreNotifier } from './event-store-notifier.js';

export interface CheckpointedReaderOptions {
  /** Names the checkpoint; one reader of a given name runs at a time across all processes. */
  name: string;
  pool: Pool;
  notifier: EventStoreNotifier;
  logger: Logger;
  /** Handles a batch inside the transaction that also moves the checkpoint. */
  handle: (tx: PoolClient, events: StoredEvent[]) => Promise<void>;
  batchSize?: number;
  /** Fallback when a notification is missed (e.g. while the listener reconnects). */
  pollIntervalMs?: number;
  /** How soon to look again when stopped at a hole in the positions (a rollback sends no notification). */
  gapRetryMs?: number;
  /**
   * Asked before each batch: true when what was handed downstream has been lost (e.g. Redis restarted
   * empty) and the reader must go through the store again from the start. Keep it cheap.
   */
  rewind?: () => Promise<boolean>;
}

export type BatchOutcome =
  | { kind: 'handled'; count: number; position: number }
  | { kind: 'busy' }
  | { kind: 'idle' };

const checkpointRowSchema = z.object({ position: z.number().int() });
const peekRowSchema = z.object({
  checkpoint: z.number().int(),
  next_position: z.number().int().nullable(),
  snapshot_xmin: z.string(),
  snapshot_xmax: z.string(),
});

/**
 * Reads the event store in position order from a durable checkpoint. The handler's effects and the new
 * checkpoint commit together, so a crash replays at most the batch that was not committed.
 */
export class CheckpointedReader {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly gapRetryMs: number;
  private lastPositionRead = 0;
  private gap: PositionGap | null = null;
  private checkpointCreated = false;

  constructor(private readonly options: CheckpointedReaderOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.gapRetryMs = options.gapRetryMs ?? 10;
  }

  get position(): number {
    return this.lastPositionRead;
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

  /**
   * One batch; exposed so tests and rebuilds can drive the reader step by step. When nothing lies past the
   * checkpoint this costs one statement and no transaction; otherwise the checkpoint row is locked (another
   * process holding it makes this one "busy"), the batch handled and the checkpoint moved, in one
   * transaction.
   */
  async processBatch(): Promise<BatchOutcome> {
    const { pool, name, handle } = this.options;
    if (!this.checkpointCreated) {
      await pool.query(
        'INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING',
        [name],
      );
      this.checkpointCreated = true;
    }
    await this.rewindIfAsked();
    // Outside any transaction: what is the next position past the checkpoint, and is it the very next one?
    const peeked = await pool.query(
      `SELECT c.position AS checkpoint,
              (SELECT min(position) FROM events WHERE position > c.position) AS next_position,
              pg_snapshot_xmin(pg_current_snapshot())::text AS snapshot_xmin,
              pg_snapshot_xmax(pg_current_snapshot())::text AS snapshot_xmax
       FROM checkpoints AS c WHERE c.name = $1`,
      [name],
    );
    if (!peeked.rows[0]) {
      // The checkpoint row was removed: start again from position 0 on the next batch.
      this.checkpointCreated = false;
      return { kind: 'idle' };
    }
    const peek = peekRowSchema.parse(peeked.rows[0]);
    if (peek.next_position === null) {
      this.gap = null;
      return { kind: 'idle' };
    }
    if (peek.next_position !== peek.checkpoint + 1) {
      // A hole right after the checkpoint: wait for its transaction to commit (which wakes this reader)
      // or, if it rolled back, for every transaction running when the hole was first seen to end.
      const known =
        this.gap !== null && peek.checkpoint + 1 >= this.gap.from && peek.next_position <= this.gap.upTo;
      if (!known) {
        this.gap = { from: peek.checkpoint + 1, upTo: peek.next_position, xmax: BigInt(peek.snapshot_xmax) };
        return { kind: 'idle' };
      }
      if (this.gap !== null && BigInt(peek.snapshot_xmin) < this.gap.xmax) return { kind: 'idle' };
    }
    const outcome = await withTransaction(pool, async (tx): Promise<BatchOutcome> => {
      const locked = await tx.query(
        'SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED',
        [name],
      );
      if (!locked.rows[0]) return { kind: 'busy' };
      const checkpoint = checkpointRowSchema.parse(locked.rows[0]);
      this.lastPositionRead = checkpoint.position;
      const { events, gap } = await readAllGapSafe(tx, checkpoint.position, this.batchSize, this.gap);
      this.gap = gap;
      const last = events.at(-1);
      if (!last) return { kind: 'idle' };
      await handle(tx, events);
      await tx.query('UPDATE checkpoints SET position = $2 WHERE name = $1', [name, last.position]);
      return { kind: 'handled', count: events.length, position: last.position };
    });
    if (outcome.kind === 'handled') this.lastPositionRead = outcome.position;
    return outcome;
  }

  /** Goes back to the start of the store when the reader's downstream says it lost what it was given. */
  private async rewindIfAsked(): Promise<void> {
    const { rewind, pool, name, logger } = this.options;
    if (!rewind || !(await rewind())) return;
    // One statement: it waits for a batch in flight to commit, then goes back; a no-op at position 0.
    const reset = await pool.query('UPDATE checkpoints SET position = 0 WHERE name = $1 AND position > 0', [
      name,
    ]);
    if (reset.rowCount === 0) return;
    this.gap = null;
    logger.warn(
      { reader: name },
      'downstream lost what it was given: reading the event store again from the start',
    );
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
      const backoff =
        failures > 0
          ? Math.min(200 * 2 ** failures, 5_000)
          : this.gap !== null
            ? this.gapRetryMs
            : this.pollIntervalMs;
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
