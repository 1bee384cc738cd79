import { z } from 'zod';
import { pairsToRecord } from '../field-pairs.js';

/** One entry as Redis hands it over; `fields` is null when the entry was trimmed away while pending. */
export interface RawEntry {
  stream: string;
  id: string;
  fields: string[] | null;
}

const entrySchema = z.tuple([z.string(), z.array(z.string()).nullable()]);
const readGroupReplySchema = z.array(z.tuple([z.string(), z.array(entrySchema)])).nullable();
const autoClaimReplySchema = z.tuple([z.string(), z.array(entrySchema)]).rest(z.unknown());
const pendingReplySchema = z.array(z.tuple([z.string(), z.string(), z.number(), z.number()]));

export function parseReadGroupReply(reply: unknown): RawEntry[] {
  const streams = readGroupReplySchema.parse(reply) ?? [];
  return streams.flatMap(([stream, entries]) => entries.map(([id, fields]) => ({ stream, id, fields })));
}

export function parseAutoClaimReply(stream: string, reply: unknown): { next: string; entries: RawEntry[] } {
  const [next, entries] = autoClaimReplySchema.parse(reply);
  return { next, entries: entries.map(([id, fields]) => ({ stream, id, fields })) };
}

const consumersReplySchema = z.array(z.array(z.union([z.string(), z.number()])));
const consumerSchema = z.object({
  name: z.coerce.string(),
  pending: z.coerce.number(),
  idle: z.coerce.number(),
});

/** XINFO CONSUMERS: each consumer's name, entries pending with it, and ms since it was last seen. */
export function parseConsumersReply(reply: unknown): { name: string; pending: number; idle: number }[] {
  return consumersReplySchema.parse(reply).map((fields) => consumerSchema.parse(pairsToRecord(fields)));
}

/** XPENDING's extended form: [id, consumer, idle ms, deliveries] per entry. */
export function parsePendingReply(reply: unknown): Map<string, number> {
  return new Map(pendingReplySchema.parse(reply).map(([id, , , deliveries]) => [id, deliveries]));
}

const flatReplySchema = z.array(z.unknown());
const groupInfoSchema = z.object({
  name: z.string(),
  pending: z.number().int(),
  lag: z.number().nullish(),
  'last-delivered-id': z.string(),
});

export interface GroupInfo {
  name: string;
  /** Entries delivered to the group and not acknowledged yet. */
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (e.g. after trimming). */
  lag: number | null;
  lastDeliveredId: string;
}

/** XINFO GROUPS (RESP2: a flat [field, value, ...] list per group). */
export function parseGroupsReply(reply: unknown): GroupInfo[] {
  return flatReplySchema.parse(reply).map((fields) => {
    const group = groupInfoSchema.parse(pairsToRecord(flatReplySchema.parse(fields)));
    return {
      name: group.name,
      pending: group.pending,
      lag: group.lag ?? null,
      lastDeliveredId: group['last-delivered-id'],
    };
  });
}

/** XPENDING's summary form, [count, smallest id, greatest id, [[consumer, count]...]]: the smallest id. */
const pendingSummarySchema = z.tuple([z.number().int(), z.string().nullable()]).rest(z.unknown());

export function parseOldestPending(reply: unknown): string | null {
  return pendingSummarySchema.parse(reply)[1];
}

/** Redis's answer to XINFO on a stream that does not exist (yet). */
export function isNoSuchKey(error: unknown): boolean {
  return error instanceof Error && error.message.includes('no such key');
}
