import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import type { Pool } from '../persistence/database.js';
import { pruneInbox } from '../persistence/history-retention.js';
import { pruneIdempotencyKeys } from './panier/checkout.js';

export interface HistoryRetentionOptions {
  pool: Pool;
  /** Says how far every consumer group has handled the store, durably. */
  bus: Pick<Bus, 'handledThrough'>;
  /** The inbox's consumers (the consumer groups' names). */
  consumers: readonly string[];
  /** Checkouts' Idempotency-Keys older than this are forgotten. */
  idempotencyKeyRetentionMs: number;
  logger: Logger;
  /** How often it runs (every 10 s by default). */
  intervalMs?: number;
  /** Called after each run with what it removed. */
  onPruned?: (pruned: PruneReport) => void;
}

export interface PruneReport {
  /** The inbox holds no row of an event at or below this position. */
  inboxPrunedThrough: number;
  inboxRows: number;
  idempotencyKeys: number;
}

/**
 * Keeps the tables that grow with every order from growing with history: the inbox rows of events every
 * consumer group has handled (the bus never delivers those again), and the checkouts' Idempotency-Keys
 * older than their stated retention. Runs in the process that hosts the relay.
 */
export class HistoryRetention {
  private timer: NodeJS.Timeout | null = null;
  private run: Promise<unknown> | null = null;
  private readonly failure: RepeatedFailure;

  constructor(private readonly options: HistoryRetentionOptions) {
    this.failure = new RepeatedFailure(options.logger, 'pruning the inbox and the idempotency keys');
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.run) return;
      this.run = this.pruneOnce()
        .then(() => this.failure.succeeded())
        .catch((error: unknown) => this.failure.failed(error))
        .finally(() => {
          this.run = null;
        });
    }, this.options.intervalMs ?? 10_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.run;
  }

  async pruneOnce(): Promise<PruneReport> {
    const { pool, bus, consumers, idempotencyKeyRetentionMs, logger } = this.options;
    const through = await bus.handledThrough();
    const inbox = await pruneInbox(pool, through, consumers);
    const idempotencyKeys = await pruneIdempotencyKeys(pool, idempotencyKeyRetentionMs);
    const report = { inboxPrunedThrough: inbox.position, inboxRows: inbox.rows, idempotencyKeys };
    if (inbox.rows > 0 || idempotencyKeys > 0) logger.debug(report, 'history pruned');
    this.options.onPruned?.(report);
    return report;
  }
}
