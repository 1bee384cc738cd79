import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { measuredSubscription } from './actors/actor-host.js';
import { clientActor } from './actors/client/client-actor.js';
import { ClientRepository } from './actors/client/client-repository.js';
import { CommandeCache } from './actors/commande/commande-cache.js';
import { DeadlineScheduler } from './actors/commande/deadline-scheduler.js';
import {
  advanceSaga,
  advanceSagas,
  SAGA_CONSUMER,
  SAGA_STREAMS,
  SagaRowCache,
  type SagaStep,
} from './actors/commande/saga-actor.js';
import { CheckoutBatcher } from './actors/panier/checkout-batcher.js';
import { PanierRepository } from './actors/panier/panier-repository.js';
import { handleBatchOnce, handleOnce, type ServiceActor } from './actors/service-actor.js';
import { CatalogueRepository } from './actors/stock/catalogue-repository.js';
import { stockActor } from './actors/stock/stock-actor.js';
import { ventesActor } from './actors/ventes/ventes-actor.js';
import { VentesRepository } from './actors/ventes/ventes-repository.js';
import { buildApi } from './api/build-api.js';
import { type Bus, type BusConsumer, type BusKind, ENTRY_REJECTIONS, type Subscription } from './bus/bus.js';
import type { ConsumerTuning } from './bus/bus-dependencies.js';
import { createBus } from './bus/create-bus.js';
import { type ActorName, type Config, DEFAULT_STREAM_LENGTH_WARNING } from './config.js';
import type { StreamName } from './domain/events.js';
import { Explorer } from './explorer/explorer.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { registerScrapeCollectors } from './observability/scrape-collectors.js';
import { CheckpointedReader } from './persistence/checkpointed-reader.js';
import { createPool, ensureDatabaseExists, type Pool } from './persistence/database.js';
import { EventStoreNotifier } from './persistence/event-store-notifier.js';
import { migrate } from './persistence/migrate.js';
import { COMMANDES_PROJECTION, projectCommandes } from './projections/commandes-projection.js';
import { CommandesQueries } from './projections/commandes-queries.js';
import { bindBus } from './startup/bus-binding.js';
import { resolveBus } from './startup/resolve-bus.js';

export interface ChoreoOptions {
  logger?: Logger;
  consumerTuning?: ConsumerTuning;
  /** How often the relay's process trims the streams (every 10 s by default). */
  streamTrimIntervalMs?: number;
  /** While a Redis stream stays above STREAM_LENGTH_WARNING, how often it is logged again (5 min). */
  streamWarningRepeatMs?: number;
  /** Node process metrics (off in tests that run several instances in one process). */
  processMetrics?: boolean;
}

const SERVICE_ACTORS: Partial<Record<ActorName, ServiceActor>> = {
  stock: stockActor,
  client: clientActor,
  ventes: ventesActor,
};

const PROJECTION_LINGER_MS = 50;

/** Every consumer group that reads each stream, whichever processes host them. */
function consumerGroupsByStream(): Map<StreamName, string[]> {
  const readers: { group: string; streams: readonly StreamName[] }[] = [
    ...Object.values(SERVICE_ACTORS).map((actor) => ({ group: actor.name, streams: actor.streams })),
    { group: SAGA_CONSUMER, streams: SAGA_STREAMS },
  ];
  const groups = new Map<StreamName, string[]>();
  for (const { group, streams } of readers) {
    for (const stream of streams) groups.set(stream, [...(groups.get(stream) ?? []), group]);
  }
  return groups;
}

/**
 * One choreo process: the HTTP API (always), plus the actors named in ACTORS, on the bus chosen at start
 * (Redis Streams or PostgreSQL; the actors only see the port). Built without starting, so tests can hold
 * every part; `start` begins consuming, `stop` drains and closes in reverse order.
 */
export class Choreo {
  private readonly consumers: BusConsumer[] = [];
  /** The bus consumer of each actor of this process that reads the bus. */
  private readonly consumerOfActor = new Map<ActorName, BusConsumer>();
  private readonly readers: CheckpointedReader[] = [];
  private deadlines: DeadlineScheduler | null = null;
  /** Shared by the services this process hosts: each one's events are the next one's commande. */
  private readonly commandes = new CommandeCache();
  private started = false;
  private stopped = false;
  private explorer: Explorer | null = null;

  private constructor(
    readonly config: Config,
    readonly pool: Pool,
    readonly bus: Bus,
    readonly metrics: Metrics,
    readonly logger: Logger,
    readonly http: FastifyInstance,
    private readonly notifier: EventStoreNotifier,
  ) {}

  /**
   * Connects, migrates, settles which bus this process uses (and checks that it is the one of the other
   * processes of its database), and builds the API. Throws a StartupError, whose message says what to do,
   * when a server does not answer or the bus would differ.
   */
  static async create(config: Config, options: ChoreoOptions = {}): Promise<Choreo> {
    const logger = options.logger ?? createLogger(config.logLevel);
    const busKind = await resolveBus(config);
    await ensureDatabaseExists(config.databaseUrl);
    const pool = createPool(config.databaseUrl, config.poolSize);
    try {
      await migrate(pool);
      await bindBus(pool, busKind, {
        redisUrl: config.redisUrl,
        streamPrefix: config.streamPrefix,
        logger,
        rebind: config.busRebind,
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    if (busKind === 'redis') {
      metrics.streamLengthWarning.set(config.streamLengthWarning ?? DEFAULT_STREAM_LENGTH_WARNING);
    }
    const notifier = new EventStoreNotifier(config.databaseUrl, logger, pool);
    const bus = createBus(
      busKind,
      {
        pool,
        notifier,
        logger,
        tuning: {
          claimIdleMs: config.claimIdleMs,
          maxDeliveries: config.maxDeliveries,
          ...options.consumerTuning,
        },
        groupsByStream: consumerGroupsByStream(),
        consumerName: () => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
        onPublished: (events) => {
          for (const event of events) {
            metrics.eventStoreEvents.inc({ event_type: event.event_type, source: event.source });
          }
          metrics.relayPublished.inc(events.length);
          const last = events.at(-1);
          if (last) metrics.relayPosition.set(last.position);
        },
      },
      {
        redisUrl: config.redisUrl,
        streamPrefix: config.streamPrefix,
        streamRetentionMs: config.streamRetentionMs,
        ...(options.streamTrimIntervalMs === undefined
          ? {}
          : { streamTrimIntervalMs: options.streamTrimIntervalMs }),
        onTrimmed: (stream, entries) => metrics.streamEntriesTrimmed.inc({ stream }, entries),
        ...(config.streamLengthWarning === undefined
          ? {}
          : { streamLengthWarning: config.streamLengthWarning }),
        ...(options.streamWarningRepeatMs === undefined
          ? {}
          : { streamWarningRepeatMs: options.streamWarningRepeatMs }),
        onStreamLength: (stream, _length, above) => metrics.streamNearBound.set({ stream }, above ? 1 : 0),
        onPendingTrimmed: (group, stream, entries) =>
          metrics.streamPendingTrimmed.inc({ group, stream }, entries),
      },
    );
    registerScrapeCollectors({
      registry: metrics.registry,
      pool,
      bus,
      logger,
      stuckAfterMs: 2 * config.sagaDeadlineMs,
    });
    const http = await buildApi(
      {
        pool,
        catalogue: new CatalogueRepository(pool),
        clients: new ClientRepository(pool),
        paniers: new PanierRepository(pool),
        checkouts: new CheckoutBatcher(pool, { logger: logger.child({ component: 'checkouts' }) }),
        ventes: new VentesRepository(pool),
        commandes: new CommandesQueries(pool),
        metrics,
        deadLetters: bus.deadLetters,
        readiness: {
          postgres: async () => {
            await pool.query('SELECT 1');
          },
          bus,
        },
      },
      logger,
      {
        checkoutRateLimit: config.checkoutRateLimit,
        checkoutRateBurst: config.checkoutRateBurst,
        bodyLimitBytes: config.bodyLimitBytes,
        corsOrigins: config.corsOrigins,
      },
    );
    const choreo = new Choreo(config, pool, bus, metrics, logger, http, notifier);
    choreo.explorer = await Explorer.register({
      http,
      pool,
      notifier,
      registry: metrics.registry,
      logger,
      bus: bus.kind,
      actors: choreo,
    });
    return choreo;
  }

  get busKind(): BusKind {
    return this.bus.kind;
  }

  hosts(actor: ActorName): boolean {
    return this.config.actors.includes(actor);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // Every process: it wakes this process's readers, and tells the other processes' readers, of appends.
    await this.notifier.start();
    if (this.hosts('relay')) this.bus.startPublishing();
    if (this.hosts('projections')) this.readers.push(this.createCommandesProjection());
    for (const [name, actor] of Object.entries(SERVICE_ACTORS)) {
      if (actor && this.hosts(name as ActorName))
        this.addConsumer(name as ActorName, this.subscribeService(actor));
    }
    if (this.hosts('saga')) {
      this.addConsumer('saga', this.subscribeSaga());
      this.deadlines = new DeadlineScheduler({
        pool: this.pool,
        logger: this.logger,
        deadlineMs: this.config.sagaDeadlineMs,
        onExpired: (_commandeId, statut) => this.metrics.commandesExpirees.inc({ etat: statut }),
      });
    }
    for (const reader of this.readers) reader.start();
    for (const consumer of this.consumers) consumer.start();
    this.deadlines?.start();
    this.explorer?.start();
    this.logger.info({ actors: this.config.actors, bus: this.bus.kind }, 'choreo started');
  }

  /** The actors this process hosts, with their consumer group and whether they are paused. */
  actorStates(): { actor: ActorName; group: string | null; paused: boolean }[] {
    return this.config.actors.map((actor) => {
      const consumer = this.consumerOfActor.get(actor);
      return { actor, group: consumer?.group ?? null, paused: consumer?.paused ?? false };
    });
  }

  /**
   * Stops an actor of this process from reading the bus, as if its service were down (its events wait);
   * false when this process hosts no consumer of that name.
   */
  async pauseActor(actor: ActorName): Promise<boolean> {
    const consumer = this.consumerOfActor.get(actor);
    if (!consumer) return false;
    await consumer.pause();
    this.logger.warn({ actor, group: consumer.group }, 'actor paused: its events wait on the bus');
    return true;
  }

  resumeActor(actor: ActorName): boolean {
    const consumer = this.consumerOfActor.get(actor);
    if (!consumer) return false;
    consumer.resume();
    this.logger.info({ actor, group: consumer.group }, 'actor resumed');
    return true;
  }

  async listen(): Promise<string> {
    const address = await this.http.listen({ port: this.config.port, host: this.config.host });
    this.explorer?.announce(address);
    return address;
  }

  /** Stops reading, lets in-flight work finish and be acknowledged, then closes connections. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.http.close();
    await this.deadlines?.stop();
    await Promise.all(this.consumers.map((consumer) => consumer.stop()));
    await Promise.all(this.readers.map((reader) => reader.stop()));
    await this.explorer?.stop();
    await this.bus.close();
    await this.notifier.close();
    await this.pool.end();
    this.logger.info('choreo stopped');
  }

  private addConsumer(actor: ActorName, consumer: BusConsumer): void {
    this.consumers.push(consumer);
    this.consumerOfActor.set(actor, consumer);
  }

  /** The actor's metrics, and the entries its group rejected (from 0, for each reason, for rate()). */
  private measured(subscription: Omit<Subscription, 'events'>): Subscription {
    const measured = measuredSubscription(subscription, this.metrics);
    const { busEntriesRejected } = this.metrics;
    for (const reason of ENTRY_REJECTIONS)
      busEntriesRejected.inc({ consumer: subscription.group, reason }, 0);
    return {
      ...measured,
      events: {
        ...measured.events,
        rejected: (reason) => busEntriesRejected.inc({ consumer: subscription.group, reason }),
      },
    };
  }

  private subscribeService(actor: ServiceActor): BusConsumer {
    return this.bus.subscribe(
      this.measured({
        group: actor.name,
        streams: actor.streams,
        handle: async (envelope) => {
          const outcome = await handleOnce(this.pool, actor, envelope, this.commandes);
          if (outcome === 'refused')
            this.metrics.eventsRefused.inc({ event_type: envelope.event_type, consumer: actor.name });
        },
        handleBatch: async (envelopes) => {
          await handleBatchOnce(this.pool, actor, envelopes, this.commandes);
          return [];
        },
      }),
    );
  }

  private subscribeSaga(): BusConsumer {
    const { metrics } = this;
    const sagaRows = new SagaRowCache();
    const recordStep = (step: SagaStep) => {
      for (const refused of step.refused)
        metrics.eventsRefused.inc({ event_type: refused, consumer: SAGA_CONSUMER });
      for (const transition of step.transitions) {
        metrics.commandeEtat.inc({ etat: transition.statut });
        if (!transition.final) continue;
        metrics.sagaDuration.observe(
          { statut: transition.statut },
          transition.at.getTime() - transition.startedAt.getTime(),
        );
        if (transition.statut === 'vente_confirmee') metrics.sagaSucces.inc();
        else metrics.sagaEchec.inc({ raison: transition.raison ?? transition.statut });
      }
    };
    return this.bus.subscribe(
      this.measured({
        group: SAGA_CONSUMER,
        streams: SAGA_STREAMS,
        handle: async (envelope) => {
          recordStep(await advanceSaga(this.pool, envelope, this.config.sagaDeadlineMs, sagaRows));
        },
        handleBatch: async (envelopes) => {
          const step = await advanceSagas(this.pool, envelopes, this.config.sagaDeadlineMs, sagaRows);
          recordStep(step);
          return step.leftOver;
        },
      }),
    );
  }

  private createCommandesProjection(): CheckpointedReader {
    return new CheckpointedReader({
      name: COMMANDES_PROJECTION,
      pool: this.pool,
      notifier: this.notifier,
      logger: this.logger,
      handle: (tx, events) =>
        projectCommandes(tx, events, (event, reason) =>
          this.logger.warn(
            { position: event.position, event_type: event.event_type, reason },
            'the commandes read model passes over an event it cannot decode',
          ),
        ),
      // A read model a few tens of milliseconds behind is fresh enough, and far cheaper in batches.
      lingerMs: PROJECTION_LINGER_MS,
    });
  }
}
