import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BusKind } from '../config.js';
import type { SagaEnvelope, StreamName } from '../domain/events.js';
import type { ScrapeProbe } from '../observability/scrape-probe.js';

/** Which transport carries the events between the actors. */
export type { BusKind } from '../config.js';

/**
 * What an actor gives the bus: how to apply its events. `handle` resolves once one event's effects are
 * committed, and throws to have it delivered again. `handleBatch` is an optional fast path for a whole
 * read, in order; it resolves with the events it left for `handle` (all of them if it throws), and must
 * not leave an event of a commande for later while applying a later event of the same commande.
 */
export interface EventHandlers {
  handle: (envelope: SagaEnvelope) => Promise<void>;
  handleBatch?: (envelopes: SagaEnvelope[]) => Promise<SagaEnvelope[]>;
}

/**
 * Why a bus set an entry aside before applying anything of it, at its first delivery (retrying cannot
 * help): it was not written by choreo's publisher (signature missing or invalid: anyone who reaches the
 * transport can write to it), or it can never be decoded. A metric label, so a closed list.
 */
export const ENTRY_REJECTIONS = ['signature_missing', 'signature_invalid', 'undecodable'] as const;
export type EntryRejection = (typeof ENTRY_REJECTIONS)[number];

/** What happened to deliveries, for the process's metrics. */
export interface DeliveryEvents {
  handled?: (envelope: SagaEnvelope) => void;
  failed?: (reason: string) => void;
  retried?: () => void;
  deadLettered?: (reason: string, deliveries: number) => void;
  /** An entry dead-lettered at once, without being applied (it is also reported as dead-lettered). */
  rejected?: (rejection: EntryRejection, reason: string) => void;
}

/** A consumer group: every event of its streams is applied once by one of the processes that host it. */
export interface Subscription extends EventHandlers {
  group: string;
  streams: readonly StreamName[];
  events?: DeliveryEvents;
}

export interface BusConsumer {
  readonly group: string;
  start(): void;
  /** Stops reading, lets the events in hand finish and be recorded as handled, then lets go. */
  stop(): Promise<void>;
  /**
   * Stops reading for now, as if the service were down: what is in hand finishes, later events wait on
   * the bus (other processes of the group, if any, go on). Resolves once nothing is in hand.
   */
  pause(): Promise<void>;
  resume(): void;
  readonly paused: boolean;
}

export interface DeadLetter {
  id: string;
  stream: string;
  /** Where the event was on the bus: a stream entry id, or a position in the event store. */
  entry_id: string;
  group: string;
  reason: string;
  deliveries: number;
  failed_at: string;
  fields: Record<string, string>;
}

/** Events a consumer group gave up on, kept with the reason until someone re-drives them. */
export interface DeadLetterStore {
  list(limit?: number): Promise<DeadLetter[]>;
  /** Delivers the event again (after a fix); throws NotFoundError for an unknown id. */
  redrive(id: string): Promise<{ id: string; stream: string; new_entry_id: string }>;
}

/** How far behind each consumer group is, per stream, as the scrape-time metrics show it. */
export interface BusLagReading {
  groups: { group: string; stream: StreamName; pending: number; lag: number | null }[];
  deadLetters: number;
}

/**
 * The bus port: the actors, the saga and the HTTP API use only this, whichever adapter carries their
 * events (`redis-streams/` or `postgres/`, chosen at start by `create-bus.ts`).
 */
export interface Bus {
  readonly kind: BusKind;
  /** Where the events travel, for the start banner and logs (no password). */
  readonly description: string;
  readonly deadLetters: DeadLetterStore;
  /** The checkpoint of the reader that makes committed events available to consumers (relay_lag_events). */
  readonly publisherCheckpoint: string;
  subscribe(subscription: Subscription): BusConsumer;
  /**
   * Work of the process that hosts the relay: for Redis Streams, publishing the event store and trimming
   * the streams; nothing for the PostgreSQL bus, whose consumers read the store itself.
   */
  startPublishing(): void;
  /**
   * The position at or below which every consumer group has handled every event of its streams, as
   * recorded durably (0 while a group has recorded none): the inbox rows of those events may go, since
   * the bus never delivers them again.
   */
  handledThrough(): Promise<number>;
  /** Throws, naming the server and its variable, when the bus cannot be reached (for /ready). */
  probe(): Promise<void>;
  /**
   * Registers the scrape-time metrics of the bus (consumer groups' lag and pending events, dead letters
   * waiting, and what else the adapter can tell); returns their readings for `scrape_collector_up`.
   */
  registerMetrics(registry: Registry, options: { timeoutMs: number; logger: Logger }): ScrapeProbe<unknown>[];
  close(): Promise<void>;
}
