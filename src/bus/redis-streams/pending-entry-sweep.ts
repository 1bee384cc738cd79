import type { Logger } from 'pino';
import { z } from 'zod';
import type { DeliveryEvents } from '../bus.js';
import { pairsToRecord } from '../field-pairs.js';
import type { Redis } from './redis.js';
import {
  parseAutoClaimReply,
  parseConsumersReply,
  parsePendingReply,
  type RawEntry,
} from './stream-reply.js';

const deletedIdsSchema = z.array(z.string());

/**
 * XAUTOCLAIM's third element (Redis 7): entries that were pending but are no longer in the stream (trimmed
 * away), which it has just removed from the pending list, whatever their idle time.
 */
function trimmedWhilePending(reply: unknown): string[] {
  if (!Array.isArray(reply)) return [];
  const parsed = deletedIdsSchema.safeParse(reply[2]);
  return parsed.success ? parsed.data : [];
}

export interface PendingEntrySweepOptions {
  redis: Redis;
  group: string;
  consumerName: string;
  streams: readonly string[];
  deadLetterStream: string;
  logger: Logger;
  events?: DeliveryEvents;
  claimIdleMs: number;
  maxDeliveries: number;
  batchSize: number;
  /** Why this consumer last failed on an entry, if it did. */
  lastFailureOf: (entryId: string) => string | undefined;
  forgetFailure: (entryId: string) => void;
  /** Called with the entries of a stream found trimmed away while pending with this group (for a metric). */
  onPendingTrimmed?: (stream: string, entries: number) => void;
  /** Applies the entries taken over, as the consumer applies what it reads (with their deliveries). */
  process: (entries: RawEntry[], deliveries: ReadonlyMap<string, number>) => Promise<void>;
}

/**
 * The consumer group's housekeeping: takes over entries left idle by a dead or stuck consumer, moves
 * those that failed too often to the dead-letter stream, and forgets consumers gone for good.
 */
export class PendingEntrySweep {
  private nextSweepAt = 0;

  constructor(private readonly options: PendingEntrySweepOptions) {}

  get due(): boolean {
    return Date.now() >= this.nextSweepAt;
  }

  async sweep(): Promise<void> {
    const { redis, streams, group, consumerName, claimIdleMs, batchSize, maxDeliveries } = this.options;
    this.nextSweepAt = Date.now() + Math.max(claimIdleMs / 2, 50);
    for (const stream of streams) {
      const reply = await redis.call(
        'XAUTOCLAIM',
        stream,
        group,
        consumerName,
        String(claimIdleMs),
        '0-0',
        'COUNT',
        String(batchSize),
      );
      const { entries } = parseAutoClaimReply(stream, reply);
      // Redis forgets these without a word (Redis 7): the group never applied their events.
      this.reportTrimmed(stream, trimmedWhilePending(reply));
      await this.forgetDeadConsumers(stream);
      if (entries.length === 0) continue;
      const deliveries = await this.deliveriesOf(stream, entries);
      const toRetry: RawEntry[] = [];
      for (const entry of entries) {
        const count = deliveries.get(entry.id) ?? 1;
        if (entry.fields !== null && count > maxDeliveries) {
          await this.deadLetter(entry, count);
        } else {
          if (entry.fields !== null) this.options.events?.retried?.();
          toRetry.push(entry);
        }
      }
      await this.options.process(toRetry, deliveries);
    }
  }

  /**
   * Says, never silently, that entries of `stream` were trimmed away while pending with this group: it
   * did not apply their events (the event store still has them).
   */
  reportTrimmed(stream: string, entryIds: readonly string[]): void {
    if (entryIds.length === 0) return;
    for (const entry of entryIds) {
      this.options.logger.error(
        { group: this.options.group, stream, entry },
        'a pending entry was trimmed away before this group applied it: its event was not delivered',
      );
    }
    this.options.onPendingTrimmed?.(stream, entryIds.length);
  }

  /** Moves the entry to the dead-letter stream with why and how often it failed, then acknowledges it. */
  async deadLetter(entry: RawEntry, deliveries: number, reason?: string): Promise<void> {
    const { redis, group, deadLetterStream, logger } = this.options;
    const why =
      reason ??
      this.options.lastFailureOf(entry.id) ??
      `failed ${deliveries - 1} deliveries (reason lost with a crashed consumer)`;
    await redis.call(
      'XADD',
      deadLetterStream,
      '*',
      'stream',
      entry.stream,
      'entry_id',
      entry.id,
      'group',
      group,
      'reason',
      why,
      'deliveries',
      String(deliveries),
      'failed_at',
      new Date().toISOString(),
      'fields',
      JSON.stringify(pairsToRecord(entry.fields ?? [])),
    );
    await redis.call('XACK', entry.stream, group, entry.id);
    this.options.forgetFailure(entry.id);
    logger.error({ group, entry: entry.id, reason: why, deliveries }, 'entry dead-lettered');
    this.options.events?.deadLettered?.(why, deliveries);
  }

  /**
   * Every restart joins the group under a new name; the old names would pile up in XINFO forever. A
   * consumer with nothing pending and silent for a while is removed: nothing is lost (it holds no entry),
   * and one that was only quiet is added back by its next read.
   */
  private async forgetDeadConsumers(stream: string): Promise<void> {
    const { redis, group, consumerName, claimIdleMs } = this.options;
    const consumers = parseConsumersReply(await redis.call('XINFO', 'CONSUMERS', stream, group));
    for (const consumer of consumers) {
      if (consumer.name === consumerName || consumer.pending > 0 || consumer.idle < 4 * claimIdleMs) continue;
      await redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer.name);
    }
  }

  private async deliveriesOf(stream: string, entries: RawEntry[]): Promise<Map<string, number>> {
    const first = entries[0]?.id ?? '-';
    const last = entries.at(-1)?.id ?? '+';
    const reply = await this.options.redis.call(
      'XPENDING',
      stream,
      this.options.group,
      first,
      last,
      String(entries.length + 100),
    );
    return parsePendingReply(reply);
  }
}
