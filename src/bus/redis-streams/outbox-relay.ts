import type { Logger } from 'pino';
import { UnavailableError } from '../../domain/errors.js';
import { isSagaEventType, type StoredEvent, type StreamName } from '../../domain/events.js';
import { crashPoint } from '../../fault-injection.js';
import { redactUrl } from '../../observability/server-url.js';
import { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import type { Pool } from '../../persistence/database.js';
import type { EventStoreNotifier } from '../../persistence/event-store-notifier.js';
import { readInboxPrunedThrough } from '../../persistence/history-retention.js';
import { encodeEnvelope } from '../envelope-codec.js';
import type { EntrySignature } from './entry-signature.js';
import { readGroupPositions } from './group-positions.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';

/** Names the relay's checkpoint: how far, in commit order, it has published the event store. */
export const OUTBOX_RELAY_CHECKPOINT = 'outbox-relay';

export interface OutboxRelayOptions {
  pool: Pool;
  redis: Redis;
  /** For messages: which Redis the relay waits for when it is away. */
  redisUrl: string;
  keys: StreamKeys;
  notifier: EventStoreNotifier;
  logger: Logger;
  /** Called with each batch published, e.g. to count events by type. */
  onPublished?: (events: StoredEvent[]) => void;
  /** The database's signing key: every entry carries its signature, which consumers check. */
  signature: () => Promise<EntrySignature>;
  /** Each stream with the consumer groups that read it: after Redis lost its data, the relay creates them. */
  consumers: ReadonlyMap<StreamName, readonly string[]>;
}

/**
 * After Redis lost its data: the groups to create on each stream, and, for a group that had handled the
 * store further than where the relay publishes again from, the position it had reached, so that it is
 * created past what it already handled.
 */
interface Recovery {
  groupsCreated: boolean;
  /** Stream key → group → the position it had handled the store up to (above the relay's restart). */
  handledUpTo: Map<string, Map<string, number>>;
}

/**
 * The only writer to the Redis streams: it publishes what the event store committed, in position order.
 * Services never write to Redis beside PostgreSQL, so there is no dual write to go wrong.
 * A crash after XADD but before the checkpoint commits republishes a batch; consumers dedupe on event_id.
 * If Redis loses its data (a restart without persistence, FLUSHALL), the relay notices its marker is gone
 * and publishes the event store again, but only after the oldest position the consumer groups recorded
 * (GroupPositionRecorder; a group that never recorded one counts as 0), never below what the inbox was
 * pruned of. It creates every group first, and moves each group that had gone further past the entries
 * it already handled (XGROUP SETID in the same MULTI as the entries, so no consumer reads in between):
 * recovery costs what was lost, not all of history.
 * Each entry is signed (entry-signature.ts): consumers apply nothing that the relay did not write.
 * No MAXLEN: a cap cuts the oldest entries whether or not every group read them, so a group that fell
 * behind would lose events it never saw. Redis's memory is bounded by the stream trimmer instead, which
 * removes only what every group acknowledged and warns when a stream passes STREAM_LENGTH_WARNING.
 */
export function createOutboxRelay(options: OutboxRelayOptions): CheckpointedReader {
  const { redis, keys, consumers, pool, logger } = options;
  // ioredis would give up on each command after its retries, with an error that names neither Redis nor
  // REDIS_URL; the reader retries the batch anyway.
  const assertConnected = (): void => {
    if (redis.status !== 'ready') {
      throw new UnavailableError(`Redis at ${redactUrl(options.redisUrl)} (REDIS_URL) is unreachable`);
    }
  };
  const groups = [...new Set([...consumers.values()].flat())];
  let recovery: Recovery | null = null;
  /** Said once per loss: the relay asks at every poll until its first batch sets the marker again. */
  let lossReported = false;

  /** Where to publish again from, once Redis is found without the marker; null while it has it. */
  const rewind = async (): Promise<number | null> => {
    assertConnected();
    if ((await redis.exists(keys.relayMarker)) === 1) {
      lossReported = false;
      return null;
    }
    const positions = await readGroupPositions(pool, groups);
    const oldest = positions.size === 0 ? 0 : Math.min(...positions.values());
    // Below what the inbox was pruned of, a group could not tell an event it applied from a new one.
    const from = Math.max(oldest, await readInboxPrunedThrough(pool));
    const handledUpTo = new Map<string, Map<string, number>>();
    for (const [stream, readers] of consumers) {
      const ahead = new Map<string, number>();
      for (const group of readers) {
        const position = positions.get(group) ?? 0;
        if (position > from) ahead.set(group, position);
      }
      handledUpTo.set(keys.stream(stream), ahead);
    }
    recovery = { groupsCreated: false, handledUpTo };
    if (!lossReported) {
      lossReported = true;
      logger.info(
        { from, groups: Object.fromEntries(positions) },
        `no relay marker in Redis (first start, or Redis lost its data): publishing the event store after ` +
          `position ${from}, the oldest position the consumer groups recorded`,
      );
    }
    return from;
  };

  return new CheckpointedReader({
    name: OUTBOX_RELAY_CHECKPOINT,
    pool,
    notifier: options.notifier,
    logger,
    batchSize: 500,
    // The marker is set with every batch published; Redis without it lost the streams (and the marker).
    rewind,
    handle: async (_tx, events) => {
      const signature = await options.signature();
      assertConnected();
      const placing = recovery;
      // While groups are being placed, one MULTI: no consumer may read between an entry and its SETID.
      const batch = placing ? redis.multi() : redis.pipeline();
      /** Commands whose "BUSYGROUP" (a consumer created the group first) is expected. */
      const creations = new Set<number>();
      let commands = 0;
      if (placing && !placing.groupsCreated) {
        for (const [stream, readers] of consumers) {
          for (const group of readers) {
            batch.call('XGROUP', 'CREATE', keys.stream(stream), group, '0', 'MKSTREAM');
            creations.add(commands++);
          }
        }
      }
      const moves = placing ? placementPoints(events, placing, keys) : new Map<number, GroupMove[]>();
      events.forEach((event, index) => {
        if (!isSagaEventType(event.event_type)) return;
        const stream = keys.streamOf(event.event_type);
        batch.call('XADD', stream, '*', ...signature.sign(stream, encodeEnvelope(event)));
        commands += 1;
        // The last entry this group already handled: it reads on from the one after.
        for (const group of moves.get(index) ?? []) {
          batch.call('XGROUP', 'SETID', stream, group, '$');
          commands += 1;
        }
      });
      const marker = String(events.at(-1)?.position ?? 0);
      // Only the batch that creates the groups makes the marker; every other one only moves it. Redis may
      // lose its data after the marker was looked for (a restart while this batch waits in the
      // connection's queue): this batch, alone in empty streams, must not set it again as if nothing had
      // been lost, and the next one finds it missing.
      if (placing && !placing.groupsCreated) batch.set(keys.relayMarker, marker);
      else batch.set(keys.relayMarker, marker, 'XX');
      const results = (await batch.exec()) ?? [];
      const failure = results.find(
        ([error], index) =>
          error !== null && !(creations.has(index) && error.message.startsWith('BUSYGROUP')),
      );
      if (failure) throw failure[0];
      crashPoint('relay.after-publish');
      if (placing) {
        placing.groupsCreated = true;
        const last = events.at(-1)?.position ?? 0;
        for (const ahead of placing.handledUpTo.values()) {
          for (const [group, position] of ahead) if (position <= last) ahead.delete(group);
        }
        if ([...placing.handledUpTo.values()].every((ahead) => ahead.size === 0)) recovery = null;
      }
      options.onPublished?.(events);
    },
  });
}

/** A group to move past the entry just added to its stream. */
type GroupMove = string;

/**
 * For each event of the batch after which groups of its stream must be moved: the groups whose last
 * entry at or below the position they had handled, in this batch, is that event's.
 */
function placementPoints(
  events: readonly StoredEvent[],
  recovery: Recovery,
  keys: StreamKeys,
): Map<number, GroupMove[]> {
  const lastIndex = new Map<string, Map<string, number>>(); // stream key → group → index of its last event
  events.forEach((event, index) => {
    if (!isSagaEventType(event.event_type)) return;
    const stream = keys.streamOf(event.event_type);
    for (const [group, position] of recovery.handledUpTo.get(stream) ?? []) {
      if (event.position > position) continue;
      const ofStream = lastIndex.get(stream) ?? new Map<string, number>();
      ofStream.set(group, index);
      lastIndex.set(stream, ofStream);
    }
  });
  const points = new Map<number, GroupMove[]>();
  for (const ofStream of lastIndex.values()) {
    for (const [group, index] of ofStream) points.set(index, [...(points.get(index) ?? []), group]);
  }
  return points;
}
