import type { Logger } from 'pino';
import type { SagaEnvelope } from '../../domain/events.js';
import { crashPoint } from '../../fault-injection.js';
import { isConflict, isTransientError } from '../../persistence/transient-errors.js';
import { type DecodeResult, decodeEnvelope } from './envelope-codec.js';
import { pairsToRecord } from './field-pairs.js';
import { createRedis, type Redis } from './redis.js';
import {
  parseAutoClaimReply,
  parseConsumersReply,
  parsePendingReply,
  parseReadGroupReply,
  type RawEntry,
} from './stream-reply.js';

export interface ConsumerEvents {
  handled?: (envelope: SagaEnvelope, entry: RawEntry) => void;
  failed?: (reason: string, entry: RawEntry) => void;
  retried?: (entry: RawEntry) => void;
  deadLettered?: (reason: string, entry: RawEntry, deliveries: number) => void;
}

export interface StreamConsumerOptions {
  redisUrl: string;
  group: string;
  consumerName: string;
  streams: string[];
  deadLetterStream: string;
  logger: Logger;
  /** Applies one event; resolves once its effects are committed. Throws to leave the entry pending. */
  handle: (envelope: SagaEnvelope) => Promise<void>;
  /**
   * Optional fast path: applies the events of a whole read, in order, and resolves with those it left
   * for `handle` to apply one by one (all of them if it throws). It must not leave an event of a
   * commande for later while applying a later event of the same commande.
   */
  handleBatch?: (envelopes: SagaEnvelope[]) => Promise<SagaEnvelope[]>;
  events?: ConsumerEvents;
  batchSize?: number;
  blockMs?: number;
  /** An entry pending this long (its consumer died or failed on it) is claimed again. */
  claimIdleMs?: number;
  /** After this many deliveries that failed, the entry goes to the dead-letter stream. */
  maxDeliveries?: number;
  /**
   * After a read that returned more than one entry (the streams are busy), wait this long before the next
   * one, so that batches grow with the load: fewer transactions per event when busy, no added latency
   * when quiet.
   */
  lingerMs?: number;
}

type Outcome = { kind: 'done' } | { kind: 'failed'; reason: string } | { kind: 'stopped' };

/**
 * One consumer of a Redis consumer group: reads its own pending entries first, then new ones, applies
 * them (one at a time per commande, commandes in parallel), and XACKs only what was committed. A sweep
 * reclaims entries left idle by a dead consumer, and dead-letters those that keep failing.
 */
export class StreamConsumer {
  private readonly redis: Redis;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly lastFailure = new Map<string, string>();
  private nextClaimAt = 0;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly maxDeliveries: number;
  private readonly lingerMs: number;
  /** Applied and committed, to be acknowledged with the next read (one round trip for both). */
  private unacked: RawEntry[] = [];

  constructor(private readonly options: StreamConsumerOptions) {
    this.redis = createRedis(options.redisUrl, { blocking: true });
    this.batchSize = options.batchSize ?? 100;
    this.blockMs = options.blockMs ?? 2_000;
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.lingerMs = options.lingerMs ?? 2;
  }

  get group(): string {
    return this.options.group;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops reading, lets the batch in hand finish (its acks included), then closes the connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.loop;
    await this.ack(this.unacked).catch((error: unknown) => {
      this.options.logger.warn(
        { err: error, group: this.options.group },
        'final acks failed: redelivered later',
      );
    });
    this.unacked = [];
    this.redis.disconnect();
  }

  private async run(): Promise<void> {
    let readingOwnPending = true;
    const pendingCursor = new Map(this.options.streams.map((stream) => [stream, '0']));
    let failures = 0;
    await this.ensureGroups().catch(() => {});
    while (this.running) {
      try {
        if (Date.now() >= this.nextClaimAt) await this.claimStaleEntries();
        const entries = readingOwnPending ? await this.readOwnPending(pendingCursor) : await this.readNew();
        if (readingOwnPending && entries.length === 0) readingOwnPending = false;
        for (const entry of entries) pendingCursor.set(entry.stream, entry.id);
        await this.process(entries);
        failures = 0;
        if (entries.length > 1 && this.lingerMs > 0 && this.running) await delay(this.lingerMs);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('NOGROUP')) {
          // Redis restarted and lost the stream: recreate the group and start over from our pending list.
          await this.ensureGroups().catch(() => {});
          readingOwnPending = true;
          for (const stream of this.options.streams) pendingCursor.set(stream, '0');
          continue;
        }
        failures += 1;
        this.options.logger.warn({ err: error, group: this.options.group }, 'stream read failed, retrying');
        await delay(Math.min(100 * 2 ** failures, 2_000));
      }
    }
  }

  private async ensureGroups(): Promise<void> {
    for (const stream of this.options.streams) {
      try {
        await this.redis.call('XGROUP', 'CREATE', stream, this.options.group, '0', 'MKSTREAM');
      } catch (error) {
        if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
      }
    }
  }

  /** Own pending entries first (ids from the cursor, no blocking), then new ones ('>', blocking a while). */
  private async readOwnPending(cursor: Map<string, string>): Promise<RawEntry[]> {
    return this.readGroup(
      this.options.streams.map((stream) => cursor.get(stream) ?? '0'),
      [],
    );
  }

  private async readNew(): Promise<RawEntry[]> {
    return this.readGroup(
      this.options.streams.map(() => '>'),
      ['BLOCK', String(this.blockMs)],
    );
  }

  /** XREADGROUP, preceded in the same round trip by the XACKs of what the last batch committed. */
  private async readGroup(ids: string[], block: string[]): Promise<RawEntry[]> {
    const { streams, group, consumerName } = this.options;
    const acks = this.unacked;
    this.unacked = [];
    const pipeline = this.redis.pipeline();
    const ackCommands = this.queueAcks(pipeline, acks);
    pipeline.call(
      'XREADGROUP',
      'GROUP',
      group,
      consumerName,
      'COUNT',
      String(this.batchSize),
      ...block,
      'STREAMS',
      ...streams,
      ...ids,
    );
    let results: [Error | null, unknown][];
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (error) {
      this.unacked.unshift(...acks);
      throw error;
    }
    // A group lost with Redis' data takes its pending entries with it; other failures are acked next time.
    const ackFailed = results
      .slice(0, ackCommands)
      .some(([error]) => error !== null && !error.message.startsWith('NOGROUP'));
    if (ackFailed) this.unacked.unshift(...acks);
    else if (acks.length > 0) crashPoint('consumer.after-ack');
    const [readError, reply] = results[ackCommands] ?? [new Error('XREADGROUP got no reply'), null];
    if (readError) throw readError;
    return parseReadGroupReply(reply);
  }

  /** Takes over entries idle too long, and dead-letters the ones that have failed too often. */
  private async claimStaleEntries(): Promise<void> {
    this.nextClaimAt = Date.now() + Math.max(this.claimIdleMs / 2, 50);
    const { streams, group, consumerName } = this.options;
    for (const stream of streams) {
      const reply = await this.redis.call(
        'XAUTOCLAIM',
        stream,
        group,
        consumerName,
        String(this.claimIdleMs),
        '0-0',
        'COUNT',
        String(this.batchSize),
      );
      const { entries } = parseAutoClaimReply(stream, reply);
      await this.forgetDeadConsumers(stream);
      if (entries.length === 0) continue;
      const deliveries = await this.deliveriesOf(stream, entries);
      const toRetry: RawEntry[] = [];
      for (const entry of entries) {
        const count = deliveries.get(entry.id) ?? 1;
        if (entry.fields !== null && count > this.maxDeliveries) {
          await this.deadLetter(entry, count);
        } else {
          if (entry.fields !== null) this.options.events?.retried?.(entry);
          toRetry.push(entry);
        }
      }
      await this.process(toRetry);
    }
  }

  /**
   * Every restart joins the group under a new name; the old names would pile up in XINFO forever. A
   * consumer with nothing pending and silent for a while is removed: nothing is lost (it holds no entry),
   * and one that was only quiet is added back by its next read.
   */
  private async forgetDeadConsumers(stream: string): Promise<void> {
    const { group, consumerName } = this.options;
    const consumers = parseConsumersReply(await this.redis.call('XINFO', 'CONSUMERS', stream, group));
    for (const consumer of consumers) {
      if (consumer.name === consumerName || consumer.pending > 0 || consumer.idle < 4 * this.claimIdleMs)
        continue;
      await this.redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer.name);
    }
  }

  private async deliveriesOf(stream: string, entries: RawEntry[]): Promise<Map<string, number>> {
    const first = entries[0]?.id ?? '-';
    const last = entries.at(-1)?.id ?? '+';
    const reply = await this.redis.call(
      'XPENDING',
      stream,
      this.options.group,
      first,
      last,
      String(entries.length + 100),
    );
    return parsePendingReply(reply);
  }

  private async deadLetter(entry: RawEntry, deliveries: number): Promise<void> {
    const reason =
      this.lastFailure.get(entry.id) ??
      `failed ${deliveries - 1} deliveries (reason lost with a crashed consumer)`;
    await this.redis.call(
      'XADD',
      this.options.deadLetterStream,
      '*',
      'stream',
      entry.stream,
      'entry_id',
      entry.id,
      'group',
      this.options.group,
      'reason',
      reason,
      'deliveries',
      String(deliveries),
      'failed_at',
      new Date().toISOString(),
      'fields',
      JSON.stringify(pairsToRecord(entry.fields ?? [])),
    );
    await this.redis.call('XACK', entry.stream, this.options.group, entry.id);
    this.lastFailure.delete(entry.id);
    this.options.logger.error(
      { group: this.options.group, entry: entry.id, reason, deliveries },
      'entry dead-lettered',
    );
    this.options.events?.deadLettered?.(reason, entry, deliveries);
  }

  private async process(entries: RawEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const acks: RawEntry[] = [];
    const decodedEntries = entries.map((entry) => ({
      entry,
      decoded: entry.fields === null ? null : decodeEnvelope(entry.fields),
    }));
    const batched = await this.processAsBatch(decodedEntries);
    for (const { entry, decoded } of decodedEntries) {
      if (!decoded?.ok || !batched.has(decoded.envelope)) continue;
      acks.push(entry);
      this.lastFailure.delete(entry.id);
      this.options.events?.handled?.(decoded.envelope, entry);
    }
    const mailboxes = new Map<string, { entry: RawEntry; envelope: SagaEnvelope | null; reason: string }[]>();
    for (const { entry, decoded } of decodedEntries) {
      if (decoded?.ok && batched.has(decoded.envelope)) continue;
      const key = decoded?.ok ? decoded.envelope.correlation_id : entry.id;
      const mailbox = mailboxes.get(key) ?? [];
      mailbox.push({
        entry,
        envelope: decoded?.ok ? decoded.envelope : null,
        reason: decoded && !decoded.ok ? decoded.reason : '',
      });
      mailboxes.set(key, mailbox);
    }
    await Promise.all(
      [...mailboxes.values()].map(async (mailbox) => {
        for (const { entry, envelope, reason } of mailbox) {
          if (entry.fields === null) {
            acks.push(entry); // trimmed away while pending: nothing left to apply
            continue;
          }
          const outcome = envelope ? await this.apply(envelope) : ({ kind: 'failed', reason } as const);
          if (outcome.kind === 'done') {
            crashPoint('consumer.after-commit');
            acks.push(entry);
            this.lastFailure.delete(entry.id);
            if (envelope) this.options.events?.handled?.(envelope, entry);
          } else if (outcome.kind === 'failed') {
            this.lastFailure.set(entry.id, outcome.reason);
            this.options.events?.failed?.(outcome.reason, entry);
            this.options.logger.warn(
              { group: this.options.group, entry: entry.id, reason: outcome.reason },
              'entry failed',
            );
            // The rest of this commande's mailbox waits for the failed entry, to keep its order.
            break;
          } else {
            break;
          }
        }
      }),
    );
    this.unacked.push(...acks);
  }

  /** The envelopes applied by the batch handler, if there is one and the read holds more than one event. */
  private async processAsBatch(
    decodedEntries: { decoded: DecodeResult | null }[],
  ): Promise<Set<SagaEnvelope>> {
    const { handleBatch } = this.options;
    const envelopes = decodedEntries.flatMap(({ decoded }) => (decoded?.ok ? [decoded.envelope] : []));
    if (!handleBatch || envelopes.length < 2) return new Set();
    let leftOver: SagaEnvelope[];
    try {
      leftOver = await handleBatch(envelopes);
    } catch (error) {
      // Nothing of the batch was kept: its events are applied one by one, with their own retries.
      this.options.logger.debug({ err: error, group: this.options.group }, 'batch failed, one by one');
      return new Set();
    }
    crashPoint('consumer.after-commit');
    const applied = new Set(envelopes);
    for (const envelope of leftOver) applied.delete(envelope);
    return applied;
  }

  private async apply(envelope: SagaEnvelope): Promise<Outcome> {
    let attempt = 0;
    for (;;) {
      try {
        await this.options.handle(envelope);
        return { kind: 'done' };
      } catch (error) {
        this.options.logger.debug(
          { err: error, group: this.options.group, attempt },
          'handler attempt failed',
        );
        if (!isTransientError(error)) {
          return { kind: 'failed', reason: error instanceof Error ? error.message : String(error) };
        }
        if (!this.running) return { kind: 'stopped' };
        attempt += 1;
        // Lost races retry at once (with jitter); an unreachable dependency is waited for.
        const wait = isConflict(error) ? Math.random() * 10 * attempt : Math.min(100 * 2 ** attempt, 2_000);
        if (!isConflict(error) && attempt % 5 === 1) {
          this.options.logger.warn(
            { err: error, group: this.options.group },
            'dependency unavailable, pausing',
          );
        }
        await delay(wait);
      }
    }
  }

  private async ack(entries: RawEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    this.queueAcks(pipeline, entries);
    await pipeline.exec();
  }

  /** Queues one XACK per stream; returns how many commands were queued. */
  private queueAcks(pipeline: ReturnType<Redis['pipeline']>, entries: RawEntry[]): number {
    const byStream = new Map<string, string[]>();
    for (const entry of entries) {
      const ids = byStream.get(entry.stream) ?? [];
      ids.push(entry.id);
      byStream.set(entry.stream, ids);
    }
    for (const [stream, ids] of byStream) pipeline.call('XACK', stream, this.options.group, ...ids);
    return byStream.size;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
