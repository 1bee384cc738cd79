import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { UnavailableError } from '../../domain/errors.js';
import type { StreamName } from '../../domain/events.js';
import { registerConsumerGroupMetrics } from '../../observability/consumer-group-metrics.js';
import { ScrapeProbe } from '../../observability/scrape-probe.js';
import { redactUrl } from '../../observability/server-url.js';
import type { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import type { Bus, BusConsumer, Subscription } from '../bus.js';
import type { BusDependencies } from '../bus-dependencies.js';
import { delay } from '../commande-dispatcher.js';
import { DeadLetterStream } from './dead-letter-stream.js';
import { type EntrySignature, entrySignatureLoader } from './entry-signature.js';
import { GroupPositionRecorder, readGroupPositions } from './group-positions.js';
import { createOutboxRelay, OUTBOX_RELAY_CHECKPOINT } from './outbox-relay.js';
import { createRedis, type Redis } from './redis.js';
import { busLagOf, readStreamStats, registerStreamVolumeMetrics } from './stream-collector.js';
import { StreamConsumer } from './stream-consumer.js';
import { StreamKeys } from './stream-keys.js';
import { StreamTrimmer } from './stream-trimmer.js';

/** How long closing waits for work stuck on a Redis that went away. */
const GIVE_UP_ON_REDIS_MS = 1_000;

export interface RedisStreamsBusOptions extends BusDependencies {
  redisUrl: string;
  /** Prepended to every Redis key, so that several systems share one Redis. */
  streamPrefix: string;
  /** Entries every group acknowledged are removed once this old (see StreamTrimmer). */
  streamRetentionMs: number;
  streamTrimIntervalMs?: number;
  onTrimmed?: (stream: string, entries: number) => void;
  /** A stream longer than this is logged and reported as near Redis's bound (see StreamTrimmer). */
  streamLengthWarning?: number;
  /** While a stream stays above the warning, how often it is logged again (5 min by default). */
  streamWarningRepeatMs?: number;
  /** Each stream's length after each trimming pass, and whether it is above the warning. */
  onStreamLength?: (stream: StreamName, length: number, aboveWarning: boolean) => void;
  /** Entries of a stream that a group found trimmed away while pending: events it never applied. */
  onPendingTrimmed?: (group: string, stream: StreamName, entries: number) => void;
  /** How often the consumer groups' positions are recorded in PostgreSQL (once a second by default). */
  groupPositionIntervalMs?: number;
}

const configReplySchema = z.tuple([z.string(), z.string()]);

/**
 * Redis Streams carry the events: the outbox relay publishes what the event store committed, one stream
 * per producing service, and each consumer group reads its streams with XREADGROUP and acknowledges
 * what it committed. The relay signs what it publishes, with a key kept in the database; consumers set
 * aside, unapplied, any entry that someone else wrote to Redis (entry-signature.ts).
 */
export class RedisStreamsBus implements Bus {
  readonly kind = 'redis' as const;
  readonly publisherCheckpoint = OUTBOX_RELAY_CHECKPOINT;
  readonly keys: StreamKeys;
  readonly deadLetters: DeadLetterStream;
  private readonly redis: Redis;
  /** The key the relay signs with and consumers verify with, read from PostgreSQL once. */
  private readonly signature: () => Promise<EntrySignature>;
  private relay: CheckpointedReader | null = null;
  private trimmer: StreamTrimmer | null = null;
  private positions: GroupPositionRecorder | null = null;
  private closing = false;

  constructor(private readonly options: RedisStreamsBusOptions) {
    this.keys = new StreamKeys(options.streamPrefix);
    this.redis = createRedis(options.redisUrl, { logger: options.logger });
    this.deadLetters = new DeadLetterStream(this.redis, this.keys, options.redisUrl);
    this.signature = entrySignatureLoader(options.pool);
  }

  get description(): string {
    const prefix = this.options.streamPrefix ? `, key prefix "${this.options.streamPrefix}"` : '';
    return `Redis Streams at ${redactUrl(this.options.redisUrl)}${prefix}`;
  }

  subscribe(subscription: Subscription): BusConsumer {
    const { tuning, logger, onPendingTrimmed } = this.options;
    // The consumer knows its streams by key; the metric names them as the rest do, without the prefix.
    const nameOfKey = new Map(subscription.streams.map((stream) => [this.keys.stream(stream), stream]));
    return new StreamConsumer({
      redisUrl: this.options.redisUrl,
      group: subscription.group,
      consumerName: this.options.consumerName(),
      streams: subscription.streams.map((stream) => this.keys.stream(stream)),
      deadLetterStream: this.keys.deadLetters,
      logger: logger.child({ consumer: subscription.group }),
      signature: this.signature,
      handle: subscription.handle,
      ...(subscription.handleBatch ? { handleBatch: subscription.handleBatch } : {}),
      ...(subscription.events ? { events: subscription.events } : {}),
      ...(onPendingTrimmed
        ? {
            onPendingTrimmed: (key: string, entries: number) => {
              const stream = nameOfKey.get(key);
              if (stream) onPendingTrimmed(subscription.group, stream, entries);
            },
          }
        : {}),
      ...tuning,
    });
  }

  startPublishing(): void {
    if (this.relay) return;
    const { pool, notifier, logger, onPublished } = this.options;
    this.relay = createOutboxRelay({
      pool,
      redis: this.redis,
      redisUrl: this.options.redisUrl,
      keys: this.keys,
      notifier,
      logger,
      signature: this.signature,
      consumers: this.options.groupsByStream,
      ...(onPublished ? { onPublished } : {}),
    });
    this.positions = this.groupPositions();
    this.trimmer = new StreamTrimmer({
      redis: this.redis,
      keys: this.keys,
      consumers: this.options.groupsByStream,
      retentionMs: this.options.streamRetentionMs,
      logger,
      ...(this.options.streamTrimIntervalMs === undefined
        ? {}
        : { intervalMs: this.options.streamTrimIntervalMs }),
      ...(this.options.onTrimmed ? { onTrimmed: this.options.onTrimmed } : {}),
      ...(this.options.streamLengthWarning === undefined
        ? {}
        : { lengthWarning: this.options.streamLengthWarning }),
      ...(this.options.streamWarningRepeatMs === undefined
        ? {}
        : { warningRepeatMs: this.options.streamWarningRepeatMs }),
      ...(this.options.onStreamLength ? { onLength: this.options.onStreamLength } : {}),
    });
    this.relay.start();
    this.trimmer.start();
    this.positions.start();
    void this.checkEvictionPolicy();
  }

  /**
   * How far the inbox may be pruned: for each group, the lower of the position it recorded and its mark as
   * Redis shows it now, and the lowest of those. The recorded position says what the group handled, and is
   * only ever raised; but a group may be delivered again what it handled (after Redis lost its data, a
   * group the relay could not place past it: one created while it publishes again, or after a relay that
   * died mid-recovery), and until it has skipped those entries its inbox rows must stay. 0 (prune nothing)
   * while some group cannot be read whole in Redis.
   */
  async handledThrough(): Promise<number> {
    const groups = [...new Set([...this.options.groupsByStream.values()].flat())];
    if (groups.length === 0) return 0;
    const recorded = await readGroupPositions(this.options.pool, groups);
    const now = await (this.positions ?? this.groupPositions()).read();
    let through = Number.POSITIVE_INFINITY;
    for (const group of groups) {
      const mark = now.get(group);
      if (mark === undefined) return 0;
      through = Math.min(through, mark, recorded.get(group) ?? 0);
    }
    return through;
  }

  /** Reads (and, started, records) the consumer groups' low-water marks. */
  private groupPositions(): GroupPositionRecorder {
    return new GroupPositionRecorder({
      redis: this.redis,
      pool: this.options.pool,
      keys: this.keys,
      consumers: this.options.groupsByStream,
      relayCheckpoint: OUTBOX_RELAY_CHECKPOINT,
      signature: this.signature,
      logger: this.options.logger,
      ...(this.options.groupPositionIntervalMs === undefined
        ? {}
        : { intervalMs: this.options.groupPositionIntervalMs }),
    });
  }

  /**
   * Warns, at start, when Redis may evict keys: with any `maxmemory-policy` but `noeviction`, a Redis that
   * reaches its `maxmemory` may drop a whole stream (every policy `allkeys-*`), and its groups with it,
   * while the relay's marker survives, so that nothing notices the loss. It does not refuse to start: the
   * same setting is harmless without a `maxmemory` or with a `volatile-*` policy (no choreo key expires),
   * and a managed Redis often forbids CONFIG GET; the operator decides, told what to set.
   */
  private async checkEvictionPolicy(): Promise<void> {
    const { logger } = this.options;
    const where = `Redis at ${redactUrl(this.options.redisUrl)} (REDIS_URL)`;
    try {
      const [, policy] = configReplySchema.parse(await this.redis.call('CONFIG', 'GET', 'maxmemory-policy'));
      if (policy === 'noeviction') {
        logger.debug(`${where} has maxmemory-policy noeviction: it never drops a stream`);
        return;
      }
      const [, maxmemory] = configReplySchema.parse(await this.redis.call('CONFIG', 'GET', 'maxmemory'));
      logger.warn(
        { maxmemoryPolicy: policy, maxmemory: Number(maxmemory) },
        `${where} has maxmemory-policy ${policy}: once it reaches maxmemory (${maxmemory === '0' ? 'unset now' : `${maxmemory} bytes`}) ` +
          'it may evict keys, and an evicted stream loses events its consumer groups have not read. ' +
          'Set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction): ' +
          'Redis then refuses new entries when full, and the relay waits and retries, losing nothing.',
      );
    } catch (error) {
      if (this.closing) return; // stopped before Redis answered: nothing to say
      logger.warn(
        { err: error },
        `${where}: could not read maxmemory-policy (CONFIG GET refused?); make sure it is noeviction, or an ` +
          'evicted stream loses events its consumer groups have not read',
      );
    }
  }

  async probe(): Promise<void> {
    const unreachable = (why: string) =>
      new UnavailableError(`Redis at ${redactUrl(this.options.redisUrl)} (REDIS_URL) is unreachable${why}`);
    if (this.redis.status !== 'ready') throw unreachable('');
    try {
      await this.redis.ping();
    } catch (error) {
      throw unreachable(`: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  registerMetrics(
    registry: Registry,
    options: { timeoutMs: number; logger: Logger },
  ): ScrapeProbe<unknown>[] {
    const streams = new ScrapeProbe({
      name: 'streams',
      read: () => readStreamStats(this.redis, this.keys),
      timeoutMs: options.timeoutMs,
      logger: options.logger,
    });
    const groups = new ScrapeProbe({
      name: 'consumer_groups',
      read: async () => {
        const reading = await streams.sample();
        if (!reading) throw new Error('the streams could not be read');
        return busLagOf(reading);
      },
      timeoutMs: options.timeoutMs,
      logger: options.logger,
    });
    registerStreamVolumeMetrics(registry, streams);
    registerConsumerGroupMetrics(registry, groups);
    return [streams];
  }

  /** Stops publishing (after the consumers stopped: what they appended last is published first). */
  async close(): Promise<void> {
    this.closing = true;
    const stopping = Promise.all([this.trimmer?.stop(), this.relay?.stop(), this.positions?.stop()]);
    // Commands waiting for a Redis that went away wait for its return: give them a moment, then leave.
    if (this.redis.status === 'ready') await stopping;
    else await Promise.race([stopping, delay(GIVE_UP_ON_REDIS_MS)]);
    this.redis.disconnect();
  }
}
