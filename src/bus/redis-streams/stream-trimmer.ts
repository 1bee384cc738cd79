import type { Logger } from 'pino';
import { z } from 'zod';
import { DEFAULT_STREAM_LENGTH_WARNING } from '../../config.js';
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
  /**
   * A stream longer than this (after its pass) is logged as near Redis's bound, naming its groups and how
   * far behind each is. Nothing caps a stream any more: this says when Redis's memory is what to watch.
   */
  lengthWarning?: number;
  /** While a stream stays above `lengthWarning`, it is logged again at most this often. */
  warningRepeatMs?: number;
  /** Called with each stream's length after each pass, and whether it is above `lengthWarning`. */
  onLength?: (stream: StreamName, length: number, aboveWarning: boolean) => void;
}

/** What a pass found of one stream: its length once trimmed, and how far behind each group is. */
interface StreamState {
  removed: number;
  length: number;
  groups: { group: string; pending: number; lag: number | null }[];
  /** Groups expected on the stream that do not exist: until they do, nothing of it is trimmed. */
  missingGroups: string[];
}

const DEFAULT_WARNING_REPEAT_MS = 5 * 60_000;

/** Where every group of a stream is: each was delivered every entry up to `delivered`, and none holds one before `oldestPending`. */
interface EveryGroupDone {
  delivered: string;
  oldestPending: string | null;
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
 * What bounds Redis's memory: removes from each saga stream the entries that every consumer group has
 * acknowledged and that are older than the retention; an entry every group is done with serves nobody,
 * and the event store keeps it anyway. An entry still pending with any group, or not yet delivered to
 * one, is never removed: a consumer that crashed finds it again, and a group that falls behind (a service
 * down for hours) loses nothing. So there is no hard cap (the relay publishes without MAXLEN, which would
 * cut entries a group never read): a stream grows with the entries its slowest group has not acknowledged.
 * Each pass measures every stream and warns (a log line, and `onLength` for the metrics) when one passes
 * `lengthWarning` (about 450 MB of Redis memory per million entries), so that an operator acts before
 * Redis's maxmemory does. A stream is left alone until every group that reads it exists.
 */
export class StreamTrimmer {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private readonly failure: RepeatedFailure;
  /** When each stream above the warning bound was last logged; a stream back under it is removed. */
  private readonly warnedAt = new Map<StreamName, number>();

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
        const state = await this.trim(this.options.keys.stream(stream), groups, redisNow);
        removed.set(stream, state.removed);
        if (state.removed > 0) this.options.onTrimmed?.(stream, state.removed);
        this.checkLength(stream, state);
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

  /**
   * Logs a stream above the warning bound when it passes it, then at most every `warningRepeatMs` while it
   * stays above (a stream stuck there for hours must not flood the log), and once when it is back under.
   */
  private checkLength(stream: StreamName, state: StreamState): void {
    const bound = this.options.lengthWarning ?? DEFAULT_STREAM_LENGTH_WARNING;
    const above = state.length > bound;
    this.options.onLength?.(stream, state.length, above);
    const lastWarned = this.warnedAt.get(stream);
    if (!above) {
      if (lastWarned !== undefined) {
        this.warnedAt.delete(stream);
        this.options.logger.info(
          { stream, length: state.length, bound },
          'a Redis stream is back under STREAM_LENGTH_WARNING',
        );
      }
      return;
    }
    const now = Date.now();
    if (
      lastWarned !== undefined &&
      now - lastWarned < (this.options.warningRepeatMs ?? DEFAULT_WARNING_REPEAT_MS)
    ) {
      return;
    }
    this.warnedAt.set(stream, now);
    // Behind = delivered and not acknowledged, plus not delivered yet (null when Redis cannot tell).
    const groups = state.groups.map(({ group, pending, lag }) => ({
      group,
      pending,
      notDelivered: lag,
      behind: lag === null ? null : pending + lag,
    }));
    this.options.logger.warn(
      { stream, length: state.length, bound, groups, missingGroups: state.missingGroups },
      'a Redis stream is longer than STREAM_LENGTH_WARNING: its entries stay until every group has ' +
        "acknowledged them, so Redis's memory grows while a group is behind (see the groups)",
    );
  }

  private async trim(stream: string, expectedGroups: readonly string[], now: number): Promise<StreamState> {
    const { keepFrom, groups, done } = await this.oldestNeeded(stream, expectedGroups, now);
    const removed =
      keepFrom === null
        ? 0
        : // Exact, not `~`: a pass every few seconds removes few entries, and `~` would keep whole nodes.
          z
            .number()
            .int()
            .parse(await this.options.redis.call('XTRIM', stream, 'MINID', keepFrom));
    if (done !== null) await this.forgetRedrivenDone(stream, done);
    const length = z
      .number()
      .int()
      .parse(await this.options.redis.call('XLEN', stream));
    return {
      removed,
      length,
      groups: groups.map(({ name, pending, lag }) => ({ group: name, pending, lag })),
      missingGroups: expectedGroups.filter((group) => !groups.some(({ name }) => name === group)),
    };
  }

  /**
   * Forgets the re-driven entries of the stream that every group has been delivered and acknowledged: they
   * no longer hold the groups' positions below them (see StreamKeys.redriven).
   */
  private async forgetRedrivenDone(stream: string, done: EveryGroupDone): Promise<void> {
    const { redis, keys } = this.options;
    const members = z.array(z.string()).parse(await redis.call('ZRANGE', keys.redriven, '0', '-1'));
    const forgotten = members.filter((member) => {
      const space = member.indexOf(' ');
      const id = member.slice(0, space);
      if (member.slice(space + 1) !== stream) return false;
      const delivered = earlier(id, done.delivered) === id;
      const settled =
        done.oldestPending === null || (id !== done.oldestPending && earlier(id, done.oldestPending) === id);
      return delivered && settled;
    });
    if (forgotten.length > 0) await redis.call('ZREM', keys.redriven, ...forgotten);
  }

  /**
   * The id of the oldest entry some group may still need: its oldest pending entry, or else the last one
   * delivered to it (kept, harmlessly, so the id always names an entry). Null while a group expected on
   * the stream does not exist yet. With the groups as XINFO GROUPS described them.
   */
  private async oldestNeeded(
    stream: string,
    expectedGroups: readonly string[],
    now: number,
  ): Promise<{ keepFrom: string | null; groups: GroupInfo[]; done: EveryGroupDone | null }> {
    let groups: GroupInfo[];
    try {
      groups = parseGroupsReply(await this.options.redis.call('XINFO', 'GROUPS', stream));
    } catch (error) {
      if (isNoSuchKey(error)) return { keepFrom: null, groups: [], done: null };
      throw error;
    }
    const existing = new Set(groups.map((group) => group.name));
    if (groups.length === 0 || expectedGroups.some((group) => !existing.has(group))) {
      return { keepFrom: null, groups, done: null };
    }
    let keepFrom = `${Math.max(0, now - this.options.retentionMs)}-0`;
    const done: EveryGroupDone = { delivered: groups[0]?.lastDeliveredId ?? '0-0', oldestPending: null };
    for (const group of groups) {
      keepFrom = earlier(keepFrom, group.lastDeliveredId);
      done.delivered = earlier(done.delivered, group.lastDeliveredId);
      if (group.pending === 0) continue;
      const oldestPending = parseOldestPending(await this.options.redis.call('XPENDING', stream, group.name));
      if (oldestPending) {
        keepFrom = earlier(keepFrom, oldestPending);
        done.oldestPending =
          done.oldestPending === null ? oldestPending : earlier(done.oldestPending, oldestPending);
      }
    }
    return { keepFrom, groups, done };
  }
}
