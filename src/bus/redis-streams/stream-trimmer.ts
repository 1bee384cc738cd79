import type { Logger } from 'pino';
import { z } from 'zod';
import type { StreamName } from '../../domain/events.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';
import { type GroupInfo, isNoSuchKey, parseGroupsReply, parseOldestPending } from './stream-reply.js';

export interface StreamTrimmerOptions {
  redis: Redis;
  keys: StreamKeys;
  /**
   * Each stream with the consumer groups that read it. A stream is left alone until all of them exist:
   * after Redis lost its data, or on a first deployment, a group not created yet must find everything.
   */
  consumers: ReadonlyMap<StreamName, readonly string[]>;
  /**
   * Entries younger than this stay, acknowledged or not: a consumer group created later (a service
   * deployed after the others) starts from the oldest entry still there.
   */
  retentionMs: number;
  logger: Logger;
  intervalMs?: number;
  /** Called with the entries each pass removed from a stream. */
  onTrimmed?: (stream: StreamName, entries: number) => void;
}

/** A stream entry id, `<milliseconds>-<sequence>`, as a pair that orders like Redis orders ids. */
function parseId(id: string): [bigint, bigint] {
  const [ms = '0', seq = '0'] = id.split('-');
  return [BigInt(ms), BigInt(seq)];
}

function earlier(a: string, b: string): string {
  const [aMs, aSeq] = parseId(a);
  const [bMs, bSeq] = parseId(b);
  return aMs < bMs || (aMs === bMs && aSeq < bSeq) ? a : b;
}

/**
 * Removes from each saga stream the entries that every consumer group has acknowledged and that are
 * older than the retention. The relay's MAXLEN caps a stream at a million entries (about 450 MB of Redis
 * memory each); an entry every group is done with serves nobody, and the event store keeps it anyway.
 * An entry still pending with any group, or not yet delivered to one, is never removed: a consumer that
 * crashed finds it again. A stream is left alone until every group that reads it exists.
 */
export class StreamTrimmer {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private readonly failure: RepeatedFailure;

  constructor(private readonly options: StreamTrimmerOptions) {
    this.failure = new RepeatedFailure(options.logger, 'trimming the streams');
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.pass) return;
      this.pass = this.trimAll()
        .then(() => this.failure.succeeded())
        .catch((error: unknown) => this.failure.failed(error))
        .finally(() => {
          this.pass = null;
        });
    }, this.options.intervalMs ?? 10_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  /**
   * One pass over every stream; returns the entries removed from each. `now` defaults to Redis's clock,
   * the one its entry ids are made of.
   */
  async trimAll(now?: number): Promise<Map<StreamName, number>> {
    const redisNow = now ?? (await this.redisTime());
    const removed = new Map<StreamName, number>();
    let failure: unknown = null;
    for (const [stream, groups] of this.options.consumers) {
      try {
        const count = await this.trim(this.options.keys.stream(stream), groups, redisNow);
        removed.set(stream, count);
        if (count > 0) this.options.onTrimmed?.(stream, count);
      } catch (error) {
        failure ??= error; // the other streams still get their pass
      }
    }
    if (failure !== null) throw failure;
    return removed;
  }

  private async redisTime(): Promise<number> {
    const [seconds, microseconds] = z
      .tuple([z.coerce.number(), z.coerce.number()])
      .parse(await this.options.redis.call('TIME'));
    return seconds * 1_000 + Math.floor(microseconds / 1_000);
  }

  private async trim(stream: string, expectedGroups: readonly string[], now: number): Promise<number> {
    const keepFrom = await this.oldestNeeded(stream, expectedGroups, now);
    if (keepFrom === null) return 0;
    // Exact, not `~`: a pass every few seconds removes few entries, and `~` would keep whole nodes.
    return z
      .number()
      .int()
      .parse(await this.options.redis.call('XTRIM', stream, 'MINID', keepFrom));
  }

  /**
   * The id of the oldest entry some group may still need: its oldest pending entry, or else the last one
   * delivered to it (kept, harmlessly, so the id always names an entry). Null while a group expected on
   * the stream does not exist yet.
   */
  private async oldestNeeded(
    stream: string,
    expectedGroups: readonly string[],
    now: number,
  ): Promise<string | null> {
    let groups: GroupInfo[];
    try {
      groups = parseGroupsReply(await this.options.redis.call('XINFO', 'GROUPS', stream));
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      throw error;
    }
    const existing = new Set(groups.map((group) => group.name));
    if (groups.length === 0 || expectedGroups.some((group) => !existing.has(group))) return null;
    let keepFrom = `${Math.max(0, now - this.options.retentionMs)}-0`;
    for (const group of groups) {
      keepFrom = earlier(keepFrom, group.lastDeliveredId);
      if (group.pending === 0) continue;
      const oldestPending = parseOldestPending(await this.options.redis.call('XPENDING', stream, group.name));
      if (oldestPending) keepFrom = earlier(keepFrom, oldestPending);
    }
    return keepFrom;
  }
}
