import type { Logger } from 'pino';
import { z } from 'zod';
import type { StoredEvent } from '../domain/events.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import { type Pool, type PoolClient, withTransaction } from './database.js';
import { EVENT_COLUMNS, GAP_SAFE_COLUMNS, type PositionGap, takeGapSafe } from './event-store.js';
import type { EventStoreNotifier } from './event-store-notifier.js';
import { HoleWatch } from './hole-watch.js';
import { holdStatement } from './statement-pipeline.js';

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
   * Once woken, wait this long before reading, so that one batch takes what several commits appended: for
   * readers whose freshness matters less than their cost (a read model), not for the relay.
   */
  lingerMs?: number;
  /**
   * Asked before each batch: null while what was handed downstream is safe; when it has been lost (e.g.
   * Redis restarted empty), the position after which the reader must go through the store again (its
   * checkpoint is set there, back or, after a bus was moved, forward). Keep it cheap.
   */
  rewind?: () => Promise<number | null>;
  /**
   * Where a checkpoint that does not exist yet starts (0 by default): a reader created after history was
   * pruned must not deliver again what it no longer has the records to recognise.
   */
  initialPosition?: () => Promise<number>;
  /** How long the reader waits at a hole before it warns, naming the transactions that hold it. */
  holeWarnAfterMs?: number;
  /**
   * A batch whose transaction stays idle this long (its process hung while handling it) is ended by
   * PostgreSQL, which lets go of the checkpoint: another process takes the batch over. Unset: no limit.
   */
  abandonBatchAfterMs?: number;
}

export type BatchOutcome =
  | { kind: 'handled'; count: number; position: number }
  | { kind: 'busy' }
  | { kind: 'idle' };

const checkpointRowSchema = z.object({ checkpoint: z.number().int() });
const peekRowSchema = z.object({ next_position: z.number().int().nullable(), snapshot_xmin: z.string() });

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
  private initialPosition: number | null = null;
  private notifiedWhileBusy = false;
  private readonly holeWatch: HoleWatch;
  private readonly failure: RepeatedFailure;

  constructor(private readonly options: CheckpointedReaderOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.gapRetryMs = options.gapRetryMs ?? 10;
    this.failure = new RepeatedFailure(options.logger, `event store reader ${options.name}`);
    this.holeWatch = new HoleWatch({
      reader: options.name,
      pool: options.pool,
      logger: options.logger,
      ...(options.holeWarnAfterMs === undefined ? {} : { warnAfterMs: options.holeWarnAfterMs }),
    });
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
   * One batch; exposed so tests and rebuilds can drive the reader step by step. The checkpoint row is
   * locked and the events past it read in one statement (another process holding the row makes this one
   * "busy"); the batch is handled and the checkpoint moved in the same transaction. While the reader waits
   * at a hole right after its checkpoint, it looks with one statement and no transaction.
   */
  async processBatch(): Promise<BatchOutcome> {
    const { pool, name, handle } = this.options;
    if (!this.checkpointCreated) {
      // Asked once: a process waiting on another one's batch comes back here at every poll.
      this.initialPosition ??= (await this.options.initialPosition?.()) ?? 0;
      const initial = this.initialPosition;
      await pool.query(
        'INSERT INTO checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
        [name, initial],
      );
      this.checkpointCreated = true;
    }
    await this.rewindIfAsked();
    if (await this.stillAtHole()) return { kind: 'idle' };
    const outcome = await withTransaction(pool, async (tx): Promise<BatchOutcome> => {
      if (this.options.abandonBatchAfterMs !== undefined) {
        holdStatement(
          tx,
          `SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(this.options.abandonBatchAfterMs)}`,
        );
      }
      const read = await tx.query(
        `SELECT c.position AS checkpoint, ${GAP_SAFE_COLUMNS}, e.*
         FROM (SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED) AS c
         LEFT JOIN LATERAL (
           SELECT ${EVENT_COLUMNS} FROM events WHERE position > c.position ORDER BY position LIMIT $2
         ) AS e ON true`,
        [name, this.batchSize],
      );
      if (!read.rows[0]) {
        // Another process holds the checkpoint, or it was removed (then it is created again next time).
        this.checkpointCreated = false;
        return { kind: 'busy' };
      }
      const { checkpoint } = checkpointRowSchema.parse(read.rows[0]);
      this.lastPositionRead = checkpoint;
      const { events, gap } = takeGapSafe(
        read.rows.map(({ checkpoint: _, ...row }) => row),
        checkpoint,
        this.gap,
      );
      this.gap = gap;
      const last = events.at(-1);
      if (!last) return { kind: 'idle' };
      await handle(tx, events);
      holdStatement(tx, 'UPDATE checkpoints SET position = $2 WHERE name = $1', [name, last.position]);
      return { kind: 'handled', count: events.length, position: last.position };
    });
    if (outcome.kind === 'handled') this.lastPositionRead = outcome.position;
    return outcome;
  }

  /**
   * True while the hole right after the checkpoint may still fill: its transaction has not committed (its
   * commit wakes this reader) and, if it rolled back, some transaction running when the hole was first
   * seen is still running.
   */
  private async stillAtHole(): Promise<boolean> {
    const gap = this.gap;
    if (gap === null || gap.from !== this.lastPositionRead + 1) return false;
    const peeked = await this.options.pool.query(
      `SELECT (SELECT min(position) FROM events WHERE position > $1) AS next_position,
              pg_snapshot_xmin(pg_current_snapshot())::text AS snapshot_xmin`,
      [this.lastPositionRead],
    );
    const peek = peekRowSchema.parse(peeked.rows[0]);
    if (peek.next_position === null || peek.next_position === gap.from) return false;
    return BigInt(peek.snapshot_xmin) < gap.horizon;
  }

  /** Goes back to where the reader's downstream says it must read again from, when it lost what it was given. */
  private async rewindIfAsked(): Promise<void> {
    const { rewind, pool, name, logger } = this.options;
    if (!rewind) return;
    const from = await rewind();
    if (from === null) return;
    // One statement: it waits for a batch in flight to commit, then moves; a no-op where it already is.
    const reset = await pool.query(
      'UPDATE checkpoints SET position = $2 WHERE name = $1 AND position <> $2 RETURNING position',
      [name, from],
    );
    if (reset.rowCount === 0) return;
    this.gap = null;
    this.lastPositionRead = from;
    logger.warn(
      { reader: name, position: from },
      `downstream lost what it was given: reading the event store again after position ${from}`,
    );
  }

  private readonly onNotification = (): void => {
    if (this.wake) this.wake();
    else this.notifiedWhileBusy = true;
  };

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let outcome: BatchOutcome;
      try {
        outcome = await this.processBatch();
        failures = 0;
        this.failure.succeeded({ reader: this.options.name });
      } catch (error) {
        failures += 1;
        this.failure.failed(error, { reader: this.options.name });
        outcome = { kind: 'idle' };
      }
      await this.holeWatch.observe(this.gap);
      if (outcome.kind === 'handled' && outcome.count === this.batchSize) continue;
      // Events committed while this batch was being handled: read them now rather than at the next poll.
      if (this.notifiedWhileBusy && failures === 0 && this.gap === null) {
        this.notifiedWhileBusy = false;
        if (this.options.lingerMs) await delay(this.options.lingerMs);
        continue;
      }
      const backoff =
        failures > 0
          ? Math.min(200 * 2 ** failures, 5_000)
          : this.gap !== null
            ? this.gapRetryMs
            : this.pollIntervalMs;
      await this.sleepUntilWoken(backoff);
      if (this.options.lingerMs && this.running) await delay(this.options.lingerMs);
    }
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = null;
        self.notifiedWhileBusy = false;
        resolve();
      }
      this.wake = done;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
