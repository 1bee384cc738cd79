import type { Logger } from 'pino';
import type { StoredEvent, StreamName } from '../domain/events.js';
import type { Pool } from '../persistence/database.js';
import type { EventStoreNotifier } from '../persistence/event-store-notifier.js';

/** How a process tunes its consumers (tests shorten the waits). */
export interface ConsumerTuning {
  batchSize?: number;
  /** Redis Streams: how long a read waits for new entries. */
  blockMs?: number;
  /** Redis Streams: an entry pending this long with a consumer (dead or stuck) is claimed by another. */
  claimIdleMs?: number;
  /** Failed deliveries before an event goes to the dead letters. */
  maxDeliveries?: number;
}

/** What either adapter is given by the process that hosts it. */
export interface BusDependencies {
  pool: Pool;
  notifier: EventStoreNotifier;
  logger: Logger;
  tuning: ConsumerTuning;
  /** Every consumer group that reads each stream, whichever processes host them. */
  groupsByStream: ReadonlyMap<StreamName, readonly string[]>;
  /** A name for one consumer of this process, unique across processes and restarts. */
  consumerName: () => string;
  /** Called with each batch of events the bus made available to consumers, e.g. to count them. */
  onPublished?: (events: StoredEvent[]) => void;
}
