import type { Logger } from 'pino';
import { UnavailableError } from '../../domain/errors.js';
import { isSagaEventType, type StoredEvent } from '../../domain/events.js';
import { crashPoint } from '../../fault-injection.js';
import { redactUrl } from '../../observability/server-url.js';
import { CheckpointedReader } from '../../persistence/checkpointed-reader.js';
import type { Pool } from '../../persistence/database.js';
import type { EventStoreNotifier } from '../../persistence/event-store-notifier.js';
import { encodeEnvelope } from '../envelope-codec.js';
import type { EntrySignature } from './entry-signature.js';
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
}

/**
 * The only writer to the Redis streams: it publishes what the event store committed, in position
 * order. Services never write to Redis beside PostgreSQL, so there is no dual write to go wrong.
 * A crash after XADD but before the checkpoint commits republishes a batch; consumers dedupe on event_id.
 * If Redis loses its data (a restart without persistence), the relay notices its marker is gone and
 * publishes the event store again from the start: consumers skip what they had already applied.
 * Each entry is signed (entry-signature.ts): consumers apply nothing that the relay did not write.
 * No MAXLEN: a cap cuts the oldest entries whether or not every group read them, so a group that fell
 * behind would lose events it never saw. Redis's memory is bounded by the stream trimmer instead, which
 * removes only what every group acknowledged and warns when a stream passes STREAM_LENGTH_WARNING.
 */
export function createOutboxRelay(options: OutboxRelayOptions): CheckpointedReader {
  const { redis, keys } = options;
  // ioredis would give up on each command after its retries, with an error that names neither Redis nor
  // REDIS_URL; the reader retries the batch anyway.
  const assertConnected = (): void => {
    if (redis.status !== 'ready') {
      throw new UnavailableError(`Redis at ${redactUrl(options.redisUrl)} (REDIS_URL) is unreachable`);
    }
  };
  return new CheckpointedReader({
    name: OUTBOX_RELAY_CHECKPOINT,
    pool: options.pool,
    notifier: options.notifier,
    logger: options.logger,
    batchSize: 500,
    // The marker is set with every batch published; Redis without it lost the streams (and the marker).
    rewind: async () => {
      assertConnected();
      return (await redis.exists(keys.relayMarker)) === 0;
    },
    handle: async (_tx, events) => {
      const signature = await options.signature();
      assertConnected();
      const pipeline = redis.pipeline();
      for (const event of events) {
        if (!isSagaEventType(event.event_type)) continue;
        const stream = keys.streamOf(event.event_type);
        pipeline.call('XADD', stream, '*', ...signature.sign(stream, encodeEnvelope(event)));
      }
      pipeline.set(keys.relayMarker, String(events.at(-1)?.position ?? 0));
      const results = (await pipeline.exec()) ?? [];
      const failure = results.find(([error]) => error !== null);
      if (failure) throw failure[0];
      crashPoint('relay.after-publish');
      options.onPublished?.(events);
    },
  });
}
