import type { Logger } from 'pino';
import {
  STREAM_OF_EVENT_TYPE,
  type StoredEvent,
  type StreamName,
  sagaEnvelopeSchema,
} from '../../domain/events.js';
import { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import type { Pool, PoolClient } from '../../persistence/database.js';
import type { EventStoreNotifier } from '../../persistence/event-store-notifier.js';
import { readInboxPrunedThrough } from '../../persistence/history-retention.js';
import type { BusConsumer, DeliveryEvents, EventHandlers } from '../bus.js';
import { CommandeDispatcher, type Delivery, type DeliveryOutcome, delay } from '../commande-dispatcher.js';
import type { DeadLetterTable } from './dead-letter-table.js';

export interface EventStoreConsumerOptions extends EventHandlers {
  group: string;
  streams: readonly StreamName[];
  pool: Pool;
  notifier: EventStoreNotifier;
  deadLetters: DeadLetterTable;
  logger: Logger;
  events?: DeliveryEvents;
  batchSize?: number;
  /** Failed deliveries before an event goes to the dead letters. */
  maxDeliveries?: number;
  /** How often the group looks for dead letters someone asked to re-drive. */
  redriveIntervalMs?: number;
}

/**
 * A batch in hand this long means its process hung (a healthy one handles 500 events in well under a
 * second, retries included): PostgreSQL ends its transaction, and another process of the group takes
 * the batch over, as XAUTOCLAIM does on Redis Streams.
 */
const HUNG_BATCH_MS = 60_000;

/** The name of a consumer group's checkpoint in `checkpoints`. */
export function busCheckpointName(group: string): string {
  return `bus:${group}`;
}

export interface PositionedDelivery extends Delivery {
  event: StoredEvent;
  stream: StreamName;
}

/** Takes a stored event as it would come off a stream: validated down to its payload. */
export function toDelivery(event: StoredEvent, stream: StreamName): PositionedDelivery {
  const parsed = sagaEnvelopeSchema.safeParse(event);
  return parsed.success
    ? { event, stream, envelope: parsed.data }
    : { event, stream, envelope: null, undecodable: `invalid ${event.event_type}: ${parsed.error.message}` };
}

/**
 * A consumer group on the PostgreSQL bus: it reads the event store itself, in position order and without
 * skipping a late commit (a CheckpointedReader named `bus:<group>`), keeps the events of its streams,
 * and has them applied by the commande dispatcher. The checkpoint row is locked while a batch is handled,
 * so one process at a time works for the group and another takes over at the next batch when it dies;
 * the checkpoint moves only once every event before it was applied or dead-lettered. A crash replays
 * the batch in hand, which the handlers' own records (the inbox, the saga's version) make harmless.
 */
export class EventStoreConsumer implements BusConsumer {
  private readonly reader: CheckpointedReader;
  private readonly dispatcher: CommandeDispatcher;
  private readonly eventTypes: ReadonlyMap<string, StreamName>;
  private readonly maxDeliveries: number;
  private running = false;
  private pausedNow = false;
  private redriveLoop: Promise<void> | null = null;
  private wakeRedrive: (() => void) | null = null;

  constructor(private readonly options: EventStoreConsumerOptions) {
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.eventTypes = new Map(
      Object.entries(STREAM_OF_EVENT_TYPE).filter(([, stream]) => options.streams.includes(stream)),
    );
    this.dispatcher = new CommandeDispatcher({ ...options, isRunning: () => this.running });
    this.reader = new CheckpointedReader({
      name: busCheckpointName(options.group),
      pool: options.pool,
      notifier: options.notifier,
      logger: options.logger,
      batchSize: options.batchSize ?? 500,
      abandonBatchAfterMs: HUNG_BATCH_MS,
      // A group's first checkpoint (a database moved from Redis Streams to this bus) starts past what the
      // inbox was pruned of: the other groups could not tell those events from new ones.
      initialPosition: () => readInboxPrunedThrough(options.pool),
      handle: (tx, events) => this.deliver(tx, events),
    });
  }

  get group(): string {
    return this.options.group;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.reader.start();
    this.redriveLoop = this.redriveWhileRunning();
  }

  get paused(): boolean {
    return this.pausedNow;
  }

  /** The reader stops after the batch in hand (its checkpoint moved); resuming reads on from there. */
  async pause(): Promise<void> {
    if (!this.running) return;
    this.pausedNow = true;
    await this.reader.stop();
  }

  resume(): void {
    if (!this.pausedNow) return;
    this.pausedNow = false;
    if (this.running) this.reader.start();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.pausedNow = false;
    this.wakeRedrive?.();
    await Promise.all([this.reader.stop(), this.redriveLoop]);
  }

  /**
   * Applies a batch read past the checkpoint, inside the transaction that then moves it. An event that
   * fails is tried again with backoff, up to `maxDeliveries` deliveries, then dead-lettered in that same
   * transaction; one that can never be decoded is dead-lettered at once. Stopping with events not
   * applied throws: the checkpoint stays, and the batch is read again by whoever reads next.
   */
  private async deliver(tx: PoolClient, events: StoredEvent[]): Promise<void> {
    let remaining = events.flatMap((event) => {
      const stream = this.eventTypes.get(event.event_type);
      return stream ? [toDelivery(event, stream)] : [];
    });
    const failedDeliveries = new Map<PositionedDelivery, number>();
    let round = 0;
    while (remaining.length > 0) {
      const outcomes = await this.dispatcher.dispatch(remaining);
      const again: PositionedDelivery[] = [];
      for (const delivery of remaining) {
        const outcome: DeliveryOutcome = outcomes.get(delivery) ?? { kind: 'waiting' };
        if (outcome.kind === 'done') continue;
        if (outcome.kind === 'waiting') {
          again.push(delivery);
          continue;
        }
        const deliveries = (failedDeliveries.get(delivery) ?? 0) + 1;
        failedDeliveries.set(delivery, deliveries);
        if (delivery.envelope === null || deliveries >= this.maxDeliveries) {
          await this.options.deadLetters.add(tx, {
            group: this.options.group,
            event: delivery.event,
            stream: delivery.stream,
            reason: outcome.reason,
            deliveries,
          });
          this.options.events?.deadLettered?.(outcome.reason, deliveries);
          if (delivery.envelope === null) this.options.events?.rejected?.('undecodable', outcome.reason);
        } else {
          this.options.events?.retried?.();
          again.push(delivery);
        }
      }
      if (again.length > 0 && !this.running)
        throw new Error(`${this.options.group} stopping: batch left for later`);
      remaining = again;
      if (remaining.length > 0) {
        round += 1;
        await delay(Math.min(50 * 2 ** round, 2_000));
      }
    }
  }

  /** Applies again the dead letters someone asked to re-drive, as they come. */
  private async redriveWhileRunning(): Promise<void> {
    const intervalMs = this.options.redriveIntervalMs ?? 1_000;
    while (this.running) {
      try {
        if (!this.pausedNow)
          await this.options.deadLetters.takeRedriveRequests(this.options.group, async (event, stream) => {
            const outcomes = await this.dispatcher.dispatch([toDelivery(event, stream)]);
            const [outcome] = outcomes.values();
            return outcome ?? { kind: 'waiting' };
          });
      } catch (error) {
        this.options.logger.warn({ err: error, group: this.options.group }, 're-driving dead letters failed');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        this.wakeRedrive = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRedrive = null;
    }
  }
}
