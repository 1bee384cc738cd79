import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { STREAM_NAMES, type StreamName } from '../../domain/events.js';
import { METRIC } from '../../observability/metrics.js';
import type { ScrapeProbe } from '../../observability/scrape-probe.js';
import type { BusLagReading } from '../bus.js';
import { pairsToRecord } from '../field-pairs.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';
import { isNoSuchKey, parseGroupsReply } from './stream-reply.js';

export interface GroupReading {
  group: string;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (e.g. after trimming). */
  lag: number | null;
}

export interface StreamReading {
  stream: StreamName;
  length: number;
  /** Entries ever added, trimmed ones included (Redis 7+); null when unknown. */
  entriesAdded: number | null;
  groups: GroupReading[];
}

export interface StreamsReading {
  streams: StreamReading[];
  deadLetters: number;
}

type PipelineResult = [Error | null, unknown];

const flatReplySchema = z.array(z.unknown());
const streamInfoSchema = z.object({ 'entries-added': z.number().int().optional() });
const lengthSchema = z.number().int();

/** XINFO answers [field, value, field, value, ...] over RESP2. */
function flatRecord(reply: unknown): Record<string, unknown> {
  return pairsToRecord(flatReplySchema.parse(reply));
}

/** The answer of one pipelined command; a stream that does not exist yet reads as `missing`. */
function answer<T>(result: PipelineResult | undefined, missing: T, parse: (reply: unknown) => T): T {
  if (!result) throw new Error('Redis pipeline answered fewer replies than commands');
  const [error, reply] = result;
  if (isNoSuchKey(error)) return missing;
  if (error) throw error;
  return parse(reply);
}

/** Length, entries added and consumer groups of every saga stream, plus the dead-letter stream's length. */
export async function readStreamStats(redis: Redis, keys: StreamKeys): Promise<StreamsReading> {
  const pipeline = redis.pipeline();
  for (const stream of STREAM_NAMES) {
    const key = keys.stream(stream);
    pipeline.call('XLEN', key);
    pipeline.call('XINFO', 'STREAM', key);
    pipeline.call('XINFO', 'GROUPS', key);
  }
  pipeline.call('XLEN', keys.deadLetters);
  const results: PipelineResult[] = (await pipeline.exec()) ?? [];
  const streams = STREAM_NAMES.map((stream, index): StreamReading => {
    const [length, info, groups] = results.slice(index * 3, index * 3 + 3);
    return {
      stream,
      length: answer(length, 0, (reply) => lengthSchema.parse(reply)),
      entriesAdded: answer(
        info,
        null,
        (reply) => streamInfoSchema.parse(flatRecord(reply))['entries-added'] ?? null,
      ),
      groups: answer(groups, [], (reply) =>
        parseGroupsReply(reply).map(({ name, pending, lag }) => ({ group: name, pending, lag })),
      ),
    };
  });
  const deadLetters = answer(results[STREAM_NAMES.length * 3], 0, (reply) => lengthSchema.parse(reply));
  return { streams, deadLetters };
}

/** What the consumer-group metrics show, from one reading of the streams. */
export function busLagOf(reading: StreamsReading): BusLagReading {
  return {
    groups: reading.streams.flatMap(({ stream, groups }) =>
      groups.map(({ group, pending, lag }) => ({ group, stream, pending, lag })),
    ),
    deadLetters: reading.deadLetters,
  };
}

/** The volume of each Redis stream: what it holds now, and what was ever added to it. */
export function registerStreamVolumeMetrics(registry: Registry, probe: ScrapeProbe<StreamsReading>): void {
  new Gauge({
    name: METRIC.streamLength,
    help: 'Entries currently in the Redis stream',
    labelNames: ['stream'] as const,
    registers: [registry],
    async collect() {
      const reading = await probe.sample();
      this.reset();
      for (const { stream, length } of reading?.streams ?? []) this.set({ stream }, length);
    },
  });
  new Counter({
    name: METRIC.streamEntriesAdded,
    help: 'Entries ever added to the Redis stream (trimmed ones included), as Redis counts them',
    labelNames: ['stream'] as const,
    registers: [registry],
    async collect() {
      const reading = await probe.sample();
      this.reset();
      for (const { stream, entriesAdded } of reading?.streams ?? []) {
        if (entriesAdded !== null) this.inc({ stream }, entriesAdded);
      }
    },
  });
}
