import type { Logger } from 'pino';
import type { StoredEvent } from '../domain/events.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import type { Pool } from '../persistence/database.js';
import { lastPosition, type PositionGap, readAllGapSafe } from '../persistence/event-store.js';
import type { EventStoreNotifier } from '../persistence/event-store-notifier.js';

export interface EventStoreTailOptions {
  pool: Pool;
  notifier: EventStoreNotifier;
  logger: Logger;
  /** Handed every committed event after the tail started, in position order, never one twice (awaited). */
  onEvents: (events: StoredEvent[]) => void | Promise<void>;
  batchSize?: number;
  /** Waits this long after a wake-up, so that the events of a busy moment come in one read. */
  lingerMs?: number;
}

const POLL_INTERVAL_MS = 1_000;
const GAP_RETRY_MS = 20;

/**
 * Follows the event store from its head, in memory (no checkpoint row: what came before the start is
 * not its business), woken by the process's notifier, and never past a position whose transaction may
 * still commit (`readAllGapSafe`), so that no late commit is missed.
 */
export class EventStoreTail {
  private position = 0;
  private gap: PositionGap | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly failure: RepeatedFailure;

  constructor(private readonly options: EventStoreTailOptions) {
    this.failure = new RepeatedFailure(options.logger, 'explorer event store tail');
  }

  /** The position of the last event handed on. */
  get lastPosition(): number {
    return this.position;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.position = await lastPosition(this.options.pool);
    this.options.notifier.subscribe(this.onNotification);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.options.notifier.unsubscribe(this.onNotification);
    this.wake?.();
    await this.loop;
    this.loop = null;
  }

  private readonly onNotification = (): void => {
    this.wake?.();
  };

  private async run(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1_000;
    while (this.running) {
      let full = false;
      try {
        const batch = await readAllGapSafe(this.options.pool, this.position, batchSize, this.gap);
        this.gap = batch.gap;
        const last = batch.events.at(-1);
        if (last) {
          this.position = last.position;
          await this.options.onEvents(batch.events);
        }
        full = batch.events.length === batchSize;
        this.failure.succeeded({});
      } catch (error) {
        this.failure.failed(error, {});
      }
      if (full) continue;
      await this.sleepUntilWoken(this.gap === null ? POLL_INTERVAL_MS : GAP_RETRY_MS);
      if (this.running && this.options.lingerMs) await delay(this.options.lingerMs);
    }
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
