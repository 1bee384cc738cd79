import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { isSagaEventType, STREAM_OF_EVENT_TYPE, type StreamName } from '../../domain/events.js';
import { registerConsumerGroupMetrics } from '../../observability/consumer-group-metrics.js';
import { ScrapeProbe } from '../../observability/scrape-probe.js';
import { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import type { Bus, BusConsumer, BusLagReading, Subscription } from '../bus.js';
import type { BusDependencies } from '../bus-dependencies.js';
import { DeadLetterTable } from './dead-letter-table.js';
import { busCheckpointName, EventStoreConsumer } from './event-store-consumer.js';

/** Names the checkpoint of the reader that counts what the bus made available (the relay's metrics). */
export const POSTGRES_BUS_PUBLISHED_CHECKPOINT = 'bus-published';

/** Counting stops there: a group that far behind is an emergency, whatever the exact number. */
const MAX_COUNTED_LAG = 100_000;

const lagRowSchema = z.object({ event_type: z.string(), behind: z.number().int() });
const checkpointRowSchema = z.object({ name: z.string(), position: z.number().int() });
const oldestDeadLetterRowSchema = z.object({ position: z.coerce.number().int().nullable() });

/**
 * The event store is the bus: each consumer group reads it by position from its own checkpoint, woken
 * by the notifier when events commit. Nothing is published anywhere else, so there is no relay and no
 * second copy of an event; what Redis Streams add is reads that do not touch PostgreSQL.
 */
export class PostgresBus implements Bus {
  readonly kind = 'postgres' as const;
  readonly publisherCheckpoint = POSTGRES_BUS_PUBLISHED_CHECKPOINT;
  readonly description = 'the PostgreSQL bus (consumer groups read the event store)';
  readonly deadLetters: DeadLetterTable;
  private publishedCounter: CheckpointedReader | null = null;

  constructor(private readonly options: BusDependencies) {
    this.deadLetters = new DeadLetterTable(options.pool);
  }

  subscribe(subscription: Subscription): BusConsumer {
    const { pool, notifier, logger, tuning } = this.options;
    return new EventStoreConsumer({
      group: subscription.group,
      streams: subscription.streams,
      pool,
      notifier,
      deadLetters: this.deadLetters,
      logger: logger.child({ consumer: subscription.group }),
      handle: subscription.handle,
      ...(subscription.handleBatch ? { handleBatch: subscription.handleBatch } : {}),
      ...(subscription.events ? { events: subscription.events } : {}),
      ...(tuning.batchSize === undefined ? {} : { batchSize: tuning.batchSize }),
      ...(tuning.maxDeliveries === undefined ? {} : { maxDeliveries: tuning.maxDeliveries }),
    });
  }

  /** Counts what the store made available to the groups, as the relay counts what it publishes to Redis. */
  startPublishing(): void {
    const { onPublished } = this.options;
    if (this.publishedCounter || !onPublished) return;
    this.publishedCounter = new CheckpointedReader({
      name: POSTGRES_BUS_PUBLISHED_CHECKPOINT,
      pool: this.options.pool,
      notifier: this.options.notifier,
      logger: this.options.logger,
      lingerMs: 50,
      handle: async (_tx, events) => onPublished(events),
    });
    this.publishedCounter.start();
  }

  /**
   * The lowest checkpoint of the consumer groups (a group not started yet: 0), and below the oldest dead
   * letter. A group's checkpoint moves only once every event before it was applied or dead-lettered, and a
   * crash replays only what is after it, so nothing at or below this position reaches a group twice. A
   * dead letter is the exception: its checkpoint passed it, and a re-drive delivers it to its group again;
   * an event at or below the pruned position is taken as handled by every group (handleOnce), so the
   * pruning stays below it until it is re-driven and applied.
   */
  async handledThrough(): Promise<number> {
    const groups = [...new Set([...this.options.groupsByStream.values()].flat())];
    if (groups.length === 0) return 0;
    const checkpoints = await this.options.pool.query(
      'SELECT name, position FROM checkpoints WHERE name = ANY($1::text[])',
      [groups.map(busCheckpointName)],
    );
    const positions = new Map(
      checkpoints.rows.map((row: unknown) => {
        const { name, position } = checkpointRowSchema.parse(row);
        return [name, position];
      }),
    );
    const oldestLetter = oldestDeadLetterRowSchema.parse(
      (await this.options.pool.query('SELECT min(position) AS position FROM bus_dead_letters')).rows[0],
    ).position;
    return Math.max(
      0,
      Math.min(
        oldestLetter === null ? Number.POSITIVE_INFINITY : oldestLetter - 1,
        ...groups.map((group) => positions.get(busCheckpointName(group)) ?? 0),
      ),
    );
  }

  async probe(): Promise<void> {
    await this.options.pool.query('SELECT 1');
  }

  registerMetrics(
    registry: Registry,
    options: { timeoutMs: number; logger: Logger },
  ): ScrapeProbe<unknown>[] {
    const groups = new ScrapeProbe({
      name: 'consumer_groups',
      read: () => this.readLag(),
      timeoutMs: options.timeoutMs,
      logger: options.logger,
    });
    registerConsumerGroupMetrics(registry, groups);
    return [groups];
  }

  async close(): Promise<void> {
    await this.publishedCounter?.stop();
  }

  /** Per group and stream, the events past the group's checkpoint (a group not started yet: all). */
  private async readLag(): Promise<BusLagReading> {
    const { pool, groupsByStream } = this.options;
    const groupNames = [...new Set([...groupsByStream.values()].flat())];
    const checkpoints = await pool.query(
      'SELECT name, position FROM checkpoints WHERE name = ANY($1::text[])',
      [groupNames.map(busCheckpointName)],
    );
    const positions = new Map(
      checkpoints.rows.map((row: unknown) => {
        const { name, position } = checkpointRowSchema.parse(row);
        return [name, position];
      }),
    );
    const groups: BusLagReading['groups'] = [];
    for (const group of groupNames) {
      const after = positions.get(busCheckpointName(group)) ?? 0;
      const behind = await pool.query(
        `SELECT event_type, count(*)::int AS behind
         FROM (SELECT event_type FROM events WHERE position > $1 ORDER BY position LIMIT $2) AS unread
         GROUP BY event_type`,
        [after, MAX_COUNTED_LAG],
      );
      const byStream = new Map<StreamName, number>();
      for (const row of behind.rows) {
        const { event_type, behind: count } = lagRowSchema.parse(row);
        const stream = isSagaEventType(event_type) ? STREAM_OF_EVENT_TYPE[event_type] : undefined;
        if (stream) byStream.set(stream, (byStream.get(stream) ?? 0) + count);
      }
      for (const [stream, readers] of groupsByStream) {
        if (readers.includes(group))
          groups.push({ group, stream, pending: 0, lag: byStream.get(stream) ?? 0 });
      }
    }
    return { groups, deadLetters: await this.deadLetters.count() };
  }
}
