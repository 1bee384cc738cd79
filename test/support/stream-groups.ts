import type { Redis } from 'ioredis';
import { z } from 'zod';
import { pairsToRecord } from '../../src/bus/field-pairs.js';
import { eventually } from './eventually.js';

const groupInfoSchema = z.array(z.array(z.union([z.string(), z.number(), z.null()])));

interface GroupState {
  name: string;
  pending: number;
  lastDeliveredId: string;
}

export function compareEntryIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs === bMs ? aSeq - bSeq : aMs - bMs;
}

export async function groupsOf(redis: Redis, stream: string): Promise<GroupState[]> {
  const reply = groupInfoSchema.parse(await redis.call('XINFO', 'GROUPS', stream));
  return reply.map((fields) => {
    const record = pairsToRecord(fields);
    return {
      name: String(record.name),
      pending: Number(record.pending),
      lastDeliveredId: String(record['last-delivered-id']),
    };
  });
}

/** Waits until every consumer group of a stream has been handed `entryId` and acknowledged all it was handed. */
export async function waitUntilConsumed(
  redis: Redis,
  stream: string,
  entryId: string,
  groups: string[],
): Promise<void> {
  await eventually(
    () => groupsOf(redis, stream),
    (states) =>
      groups.every((group) => {
        const state = states.find((candidate) => candidate.name === group);
        return (
          state !== undefined && state.pending === 0 && compareEntryIds(state.lastDeliveredId, entryId) >= 0
        );
      }),
    { description: `groups ${groups.join(', ')} to consume ${stream} up to ${entryId}` },
  );
}
