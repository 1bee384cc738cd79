import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { RecentMap } from '../collections/recent-map.js';
import {
  isSagaEventType,
  type SagaEnvelope,
  type StoredEvent,
  sagaEnvelopeSchema,
} from '../domain/events.js';
import type { CommandeSnapshot } from '../machines/commande-replay.js';
import { transitionKey } from '../machines/machine-transitions.js';
import type { Pool } from '../persistence/database.js';
import type { EventStoreNotifier } from '../persistence/event-store-notifier.js';
import { type CommandeChange, commandeChangeOf } from './commande-change.js';
import { foldCommandeStep } from './commande-step.js';
import { EventStoreTail } from './event-store-tail.js';
import type { SseConnection } from './sse-connection.js';
import { type AuditVerdict, auditVerdict, readSystem, type SystemReading } from './system-reading.js';
import { type TrafficReading, TrafficWindow } from './traffic-window.js';

/** Which changes a browser wants: every commande's (the orders list), one commande's, or none. */
export type ChangeFilter = { kind: 'all' } | { kind: 'none' } | { kind: 'commande'; commandeId: string };

/** Whose commandes a browser may be told of: every client's (staff), or one client's only. */
export type ChangeScope = { kind: 'every-client' } | { kind: 'client'; clientId: number };

/** A change with the client whose commande it is (null when the event store does not say). */
interface OwnedChange {
  change: CommandeChange;
  clientId: number | null;
}

export interface Overview extends SystemReading {
  at: string;
  /** The last event position the explorer has seen. */
  position: number;
  traffic: TrafficReading;
  audit: AuditVerdict | null;
}

interface Subscriber {
  connection: SseConnection;
  filter: ChangeFilter;
  scope: ChangeScope;
  overview: boolean;
}

export interface LiveFeedOptions {
  pool: Pool;
  notifier: EventStoreNotifier;
  registry: Registry;
  logger: Logger;
}

/** A commande's creation, as `learnClients` reads it back. */
const creationRowSchema = z.object({ aggregate_id: z.string(), client_id: z.number().int().positive() });

const FINAL_OUTCOMES = ['vente_confirmee', 'stock_indisponible', 'annulee'] as const;
/** Changes kept to resume a browser that reconnects (Last-Event-ID). */
const REPLAY_CAPACITY = 5_000;
/** At most this many changes per message to a browser that follows every commande. */
const MAX_CHANGES_PER_MESSAGE = 300;
const FLUSH_INTERVAL_MS = 250;
const OVERVIEW_INTERVAL_MS = 1_000;
const AUDIT_INTERVAL_MS = 15_000;
/**
 * The audit folds the whole store in this process (4 s of CPU at 25,000 orders, measured in the bench):
 * the next one waits at least this many times as long as the last took, so that it costs an open
 * overview at most a twentieth of the time, however large the store grows.
 */
const AUDIT_SPACING_FACTOR = 20;
/** The tail goes on this long after the last browser left, so that a reload finds the last minute. */
const IDLE_LINGER_MS = 5 * 60_000;

/**
 * One per process, shared by every open explorer: a single tail of the event store and a single reading of
 * the system per second, serialized once and fanned out. A browser costs a socket and its share of the
 * writes, never a query of its own.
 */
export class LiveFeed {
  private readonly tail: EventStoreTail;
  private readonly subscribers = new Set<Subscriber>();
  private readonly commandes = new RecentMap<string, { snapshot: CommandeSnapshot; createdAtMs: number }>(
    50_000,
  );
  /** Whose each commande is, learned from its events (most carry `client_id`) or from its creation. */
  private readonly clientOfCommande = new RecentMap<string, number>(50_000);
  private readonly traffic = new TrafficWindow();
  private readonly recent: OwnedChange[] = [];
  private pending: OwnedChange[] = [];
  private audit: AuditVerdict | null = null;
  private auditAt = 0;
  private auditTookMs = 0;
  private auditInFlight = false;
  private lastOverview: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private idleTimer: NodeJS.Timeout | null = null;
  private starting: Promise<void> | null = null;
  private overviewInFlight = false;
  private closed = false;

  constructor(private readonly options: LiveFeedOptions) {
    this.tail = new EventStoreTail({
      pool: options.pool,
      notifier: options.notifier,
      logger: options.logger,
      lingerMs: 20,
      onEvents: (events) => this.onEvents(events),
    });
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a browser. With `lastEventId` (the last position it saw), it first gets the changes it missed, or
   * a `reset` when they are no longer kept.
   */
  async subscribe(
    connection: SseConnection,
    filter: ChangeFilter,
    options: { scope: ChangeScope; overview: boolean; lastEventId: number | null },
  ): Promise<() => void> {
    await this.ensureStarted();
    const subscriber: Subscriber = { connection, filter, scope: options.scope, overview: options.overview };
    this.subscribers.add(subscriber);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    connection.send('hello', JSON.stringify({ position: this.tail.lastPosition }), this.tail.lastPosition);
    if (options.lastEventId !== null) this.resume(subscriber, options.lastEventId);
    if (options.overview && this.lastOverview) connection.send('overview', this.lastOverview);
    else if (options.overview) void this.publishOverview();
    return () => this.unsubscribe(subscriber);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subscriber of this.subscribers) subscriber.connection.close();
    this.subscribers.clear();
    await this.stopTail();
  }

  private async ensureStarted(): Promise<void> {
    if (this.closed) throw new Error('the explorer feed is closed');
    this.starting ??= this.tail.start().then(() => {
      this.timers = [
        setInterval(() => this.flush(), FLUSH_INTERVAL_MS),
        setInterval(() => void this.publishOverview(), OVERVIEW_INTERVAL_MS),
      ];
    });
    try {
      await this.starting;
    } catch (error) {
      this.starting = null;
      throw error;
    }
  }

  private unsubscribe(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    if (this.subscribers.size > 0 || this.closed || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.subscribers.size === 0) void this.stopTail();
    }, IDLE_LINGER_MS);
    this.idleTimer.unref();
  }

  private async stopTail(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const starting = this.starting;
    this.starting = null;
    await starting?.catch(() => {});
    await this.tail.stop();
    this.recent.length = 0;
    this.pending = [];
  }

  private async onEvents(events: readonly StoredEvent[]): Promise<void> {
    const sagaEvents: SagaEnvelope[] = [];
    for (const stored of events) {
      if (!isSagaEventType(stored.event_type)) continue;
      const parsed = sagaEnvelopeSchema.safeParse(stored);
      if (parsed.success) sagaEvents.push(parsed.data);
    }
    await this.learnClients(sagaEvents);
    for (const event of sagaEvents) {
      const atMs = Date.parse(event.timestamp);
      const known = this.commandes.get(event.aggregate_id);
      const folded = foldCommandeStep(known?.snapshot, event);
      if (folded) {
        const createdAtMs = event.event_type === 'CommandeCreee' ? atMs : known?.createdAtMs;
        if (createdAtMs !== undefined) {
          this.commandes.set(event.aggregate_id, { snapshot: folded.snapshot, createdAtMs });
        }
        const { step } = folded;
        if (step.accepted && step.from !== null) {
          this.traffic.recordTransition(transitionKey(step.from, event.event_type, step.to), atMs);
        }
        if (step.accepted && step.final) {
          this.traffic.recordCompletion(
            step.to,
            atMs,
            createdAtMs === undefined ? null : Math.max(0, atMs - createdAtMs),
          );
        }
      }
      const owned = {
        change: commandeChangeOf(event, folded?.step ?? null),
        clientId: this.clientOfCommande.get(event.aggregate_id) ?? null,
      };
      this.pending.push(owned);
      this.recent.push(owned);
    }
    if (this.recent.length > REPLAY_CAPACITY) this.recent.splice(0, this.recent.length - REPLAY_CAPACITY);
  }

  /**
   * Learns whose each commande is before its changes go out. Every saga event but StockLibere and
   * CommandeExpiree carries its `client_id`; for those, of a commande this feed has not seen since it
   * started, the commande's creation in the event store says.
   */
  private async learnClients(events: readonly SagaEnvelope[]): Promise<void> {
    const unknown = new Set<string>();
    for (const event of events) {
      if ('client_id' in event.data) this.clientOfCommande.set(event.aggregate_id, event.data.client_id);
      else if (this.clientOfCommande.get(event.aggregate_id) === undefined) unknown.add(event.aggregate_id);
    }
    if (unknown.size === 0) return;
    try {
      const result = await this.options.pool.query(
        `SELECT aggregate_id, data->'client_id' AS client_id
           FROM events WHERE aggregate_id = ANY($1::text[]) AND version = 1 AND event_type = 'CommandeCreee'`,
        [[...unknown]],
      );
      for (const row of result.rows) {
        const created = creationRowSchema.parse(row);
        this.clientOfCommande.set(created.aggregate_id, created.client_id);
      }
    } catch (error) {
      // Their changes still reach staff; a client is not told of them (never of another's by mistake).
      this.options.logger.warn(
        { err: error, commandes: unknown.size },
        'explorer could not tell whose commandes',
      );
    }
  }

  private resume(subscriber: Subscriber, lastEventId: number): void {
    const oldest = this.recent[0]?.change;
    const missed = this.recent.filter((owned) => owned.change.position > lastEventId);
    const lostSome =
      oldest === undefined ? lastEventId < this.tail.lastPosition : oldest.position > lastEventId + 1;
    if (lostSome) {
      subscriber.connection.send('reset', JSON.stringify({ reason: 'missed changes are no longer kept' }));
      return;
    }
    this.sendChanges(subscriber, missed);
  }

  private flush(): void {
    const changes = this.pending;
    this.pending = [];
    for (const subscriber of this.subscribers) {
      if (subscriber.connection.takeFellBehind()) {
        subscriber.connection.send('reset', JSON.stringify({ reason: 'the browser fell behind' }));
      }
      if (changes.length > 0) this.sendChanges(subscriber, changes);
    }
  }

  private sendChanges(subscriber: Subscriber, changes: readonly OwnedChange[]): void {
    const { filter, scope } = subscriber;
    if (filter.kind === 'none') return;
    const selected: CommandeChange[] = [];
    for (const { change, clientId } of changes) {
      if (filter.kind === 'commande' && change.commande_id !== filter.commandeId) continue;
      // A commande whose client is not known is nobody's to a client: never guessed to be theirs.
      if (scope.kind === 'client' && clientId !== scope.clientId) continue;
      selected.push(change);
    }
    const last = changes.at(-1)?.change;
    if (selected.length === 0 || last === undefined) return;
    const truncated = selected.length > MAX_CHANGES_PER_MESSAGE;
    const sent = truncated ? selected.slice(-MAX_CHANGES_PER_MESSAGE) : selected;
    subscriber.connection.send('changes', JSON.stringify({ truncated, changes: sent }), last.position);
  }

  private async publishOverview(): Promise<void> {
    if (this.overviewInFlight || this.subscribers.size === 0) return;
    if (![...this.subscribers].some((subscriber) => subscriber.overview)) return;
    this.overviewInFlight = true;
    try {
      this.refreshAuditInBackground();
      const system = await readSystem(this.options.registry);
      const now = Date.now();
      const overview: Overview = {
        ...system,
        at: new Date(now).toISOString(),
        position: this.tail.lastPosition,
        traffic: this.traffic.reading(now, FINAL_OUTCOMES),
        audit: this.audit,
      };
      this.lastOverview = JSON.stringify(overview);
      for (const subscriber of this.subscribers) {
        if (subscriber.overview) subscriber.connection.send('overview', this.lastOverview);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'explorer overview reading failed');
    } finally {
      this.overviewInFlight = false;
    }
  }

  private refreshAuditInBackground(): void {
    const spacing = Math.max(AUDIT_INTERVAL_MS, AUDIT_SPACING_FACTOR * this.auditTookMs);
    if (this.auditInFlight || Date.now() - this.auditAt < spacing) return;
    this.auditInFlight = true;
    const startedAt = Date.now();
    auditVerdict(this.options.pool)
      .then((verdict) => {
        this.audit = verdict;
      })
      .catch((error: unknown) => this.options.logger.warn({ err: error }, 'explorer audit failed'))
      .finally(() => {
        this.auditAt = Date.now();
        this.auditTookMs = this.auditAt - startedAt;
        this.auditInFlight = false;
      });
  }
}
