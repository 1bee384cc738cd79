import type { Logger } from 'pino';
import { RecentMap } from '../../collections/recent-map.js';
import { crashPoint } from '../../fault-injection.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import type { BusConsumer, DeliveryEvents, EntryRejection, EventHandlers } from '../bus.js';
import { CommandeDispatcher, type Delivery, delay } from '../commande-dispatcher.js';
import { decodeEnvelope } from '../envelope-codec.js';
import type { EntrySignature } from './entry-signature.js';
import { PendingEntrySweep } from './pending-entry-sweep.js';
import { createRedis, type Redis } from './redis.js';
import { parseReadGroupReply, type RawEntry } from './stream-reply.js';

export interface StreamConsumerOptions extends EventHandlers {
  redisUrl: string;
  group: string;
  consumerName: string;
  streams: string[];
  deadLetterStream: string;
  logger: Logger;
  /** The database's signing key: an entry the relay did not sign is set aside, never applied. */
  signature: () => Promise<EntrySignature>;
  events?: DeliveryEvents;
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
  /**
   * How many entries' last failure reason (kept for the dead letter's reason) this consumer remembers.
   * An entry another consumer took over is never settled here, so without a bound the reasons would pile up.
   */
  rememberedFailures?: number;
  /**
   * Called with the entries of a stream found trimmed away while pending with this group: each is an
   * event the group never applied (for a metric; the log line says which).
   */
  onPendingTrimmed?: (stream: string, entries: number) => void;
}

/** How long stopping waits for a loop stuck on a Redis that went away. */
const GIVE_UP_ON_REDIS_MS = 500;

interface EntryDelivery extends Delivery {
  entry: RawEntry;
}

/** An entry set aside at its first delivery, without applying anything of it. */
interface RejectedEntry {
  entry: RawEntry;
  rejection: EntryRejection;
  reason: string;
}

/**
 * One consumer of a Redis consumer group: reads its own pending entries first, then new ones, has them
 * applied by the commande dispatcher, and XACKs only what was committed. The pending-entry sweep takes
 * over entries left idle by a dead consumer, and dead-letters those that keep failing.
 */
export class StreamConsumer implements BusConsumer {
  private readonly redis: Redis;
  private running = false;
  private loop: Promise<void> | null = null;
  private pausedGate: { opened: Promise<void>; open: () => void } | null = null;
  private inHand: Promise<void> = Promise.resolve();
  private finishInHand: () => void = () => {};
  /**
   * Why this consumer last failed on an entry, for the reason of its dead letter. Bounded: an entry that
   * another consumer takes over (and settles) is never forgotten here, and a forgotten reason only makes a
   * dead letter say that the reason was lost.
   */
  private readonly lastFailure: RecentMap<string, string>;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly lingerMs: number;
  private readonly dispatcher: CommandeDispatcher;
  private readonly sweep: PendingEntrySweep;
  private readonly readFailure: RepeatedFailure;
  /** Applied and committed, to be acknowledged with the next read (one round trip for both). */
  private unacked: RawEntry[] = [];

  constructor(private readonly options: StreamConsumerOptions) {
    this.redis = createRedis(options.redisUrl, { blocking: true });
    this.batchSize = options.batchSize ?? 100;
    this.blockMs = options.blockMs ?? 2_000;
    this.lingerMs = options.lingerMs ?? 2;
    this.lastFailure = new RecentMap(options.rememberedFailures ?? 10_000);
    this.readFailure = new RepeatedFailure(options.logger, `reading the streams for ${options.group}`);
    this.dispatcher = new CommandeDispatcher({ ...options, isRunning: () => this.running });
    this.sweep = new PendingEntrySweep({
      redis: this.redis,
      group: options.group,
      consumerName: options.consumerName,
      streams: options.streams,
      deadLetterStream: options.deadLetterStream,
      logger: options.logger,
      ...(options.events ? { events: options.events } : {}),
      claimIdleMs: options.claimIdleMs ?? 30_000,
      maxDeliveries: options.maxDeliveries ?? 5,
      batchSize: this.batchSize,
      lastFailureOf: (entryId) => this.lastFailure.get(entryId),
      forgetFailure: (entryId) => this.lastFailure.delete(entryId),
      ...(options.onPendingTrimmed ? { onPendingTrimmed: options.onPendingTrimmed } : {}),
      process: (entries, deliveries) => this.process(entries, deliveries),
    });
  }

  get group(): string {
    return this.options.group;
  }

  /** How many entries' failure reasons this consumer holds (bounded by `rememberedFailures`). */
  get rememberedFailureCount(): number {
    return this.lastFailure.size;
  }

  get paused(): boolean {
    return this.pausedGate !== null;
  }

  async pause(): Promise<void> {
    if (!this.pausedGate) {
      let open = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      this.pausedGate = { opened, open };
    }
    await this.inHand;
  }

  resume(): void {
    const gate = this.pausedGate;
    this.pausedGate = null;
    gate?.open();
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
    this.resume();
    if (this.redis.status === 'ready') {
      await this.loop;
    } else {
      // A read waiting on a Redis that went away waits for its return (and ioredis keeps it queued even
      // after disconnect): give it a moment, then leave it. Nothing is lost: the entries stay pending.
      await Promise.race([this.loop, delay(GIVE_UP_ON_REDIS_MS)]);
    }
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
      if (this.pausedGate) {
        // What was applied is acknowledged now, not with a next read that will not come while paused.
        const acks = this.unacked.splice(0);
        await this.ack(acks).catch(() => this.unacked.unshift(...acks));
        this.finishInHand();
        await this.pausedGate.opened;
        continue;
      }
      this.inHand = new Promise((resolve) => {
        this.finishInHand = resolve;
      });
      try {
        // The key first (read once, from PostgreSQL): entries are not taken before they can be checked.
        await this.options.signature();
        if (this.sweep.due) await this.sweep.sweep();
        const entries = readingOwnPending ? await this.readOwnPending(pendingCursor) : await this.readNew();
        if (readingOwnPending && entries.length === 0) readingOwnPending = false;
        for (const entry of entries) pendingCursor.set(entry.stream, entry.id);
        await this.process(entries);
        failures = 0;
        this.readFailure.succeeded({ group: this.options.group });
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
        this.readFailure.failed(error, { group: this.options.group });
        await delay(Math.min(100 * 2 ** failures, 2_000));
      }
    }
    this.finishInHand();
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

  /**
   * Checks each entry's signature, then decodes it, then has the dispatcher apply what passed both. An
   * entry that fails either is dead-lettered at once: no later delivery can make it pass (a retry is for
   * failures that may, like a database away or a bug fixed meanwhile). `deliveryCounts` (from XPENDING,
   * for entries taken over) says how often each was delivered; a fresh read is its first delivery.
   */
  private async process(
    entries: RawEntry[],
    deliveryCounts: ReadonlyMap<string, number> = new Map(),
  ): Promise<void> {
    if (entries.length === 0) return;
    const signature = await this.options.signature();
    const acks: RawEntry[] = [];
    const deliveries: EntryDelivery[] = [];
    const rejected: RejectedEntry[] = [];
    const trimmed = new Map<string, string[]>();
    for (const entry of entries) {
      if (entry.fields === null) {
        // Trimmed away while pending: nothing left to apply here, so it is acknowledged (and reported).
        acks.push(entry);
        trimmed.set(entry.stream, [...(trimmed.get(entry.stream) ?? []), entry.id]);
        continue;
      }
      // Nothing of an entry is read before its signature is checked: a forged one is only set aside.
      const signed = signature.verify(entry.stream, entry.fields);
      if (!signed.ok) {
        rejected.push({ entry, rejection: signed.rejection, reason: signed.reason });
        continue;
      }
      const decoded = decodeEnvelope(entry.fields);
      if (!decoded.ok) {
        rejected.push({ entry, rejection: 'undecodable', reason: decoded.reason });
        continue;
      }
      deliveries.push({ entry, envelope: decoded.envelope });
    }
    for (const [stream, entryIds] of trimmed) this.sweep.reportTrimmed(stream, entryIds);
    // Set aside before anything is applied: if Redis fails meanwhile, nothing of the read was applied or
    // acknowledged, and the sweep hands its entries over again once they are idle.
    for (const { entry, rejection, reason } of rejected) {
      await this.sweep.deadLetter(entry, deliveryCounts.get(entry.id) ?? 1, reason);
      this.options.events?.rejected?.(rejection, reason);
    }
    const outcomes = await this.dispatcher.dispatch(deliveries);
    for (const [{ entry }, outcome] of outcomes) {
      if (outcome.kind === 'done') {
        acks.push(entry);
        this.lastFailure.delete(entry.id);
      } else if (outcome.kind === 'failed') {
        this.lastFailure.set(entry.id, outcome.reason);
      }
    }
    this.unacked.push(...acks);
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
