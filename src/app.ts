import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { type ConsumerTuning, createHostedConsumer } from './actors/actor-host.js';
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
import { DeadLetters } from './bus/redis-streams/dead-letter-stream.js';
import { createOutboxRelay } from './bus/redis-streams/outbox-relay.js';
import { createRedis, type Redis } from './bus/redis-streams/redis.js';
import type { StreamConsumer } from './bus/redis-streams/stream-consumer.js';
import { StreamKeys } from './bus/redis-streams/stream-keys.js';
import { StreamTrimmer } from './bus/redis-streams/stream-trimmer.js';
import type { ActorName, Config } from './config.js';
import type { StreamName } from './domain/events.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { registerScrapeCollectors } from './observability/scrape-collectors.js';
import { CheckpointedReader } from './persistence/checkpointed-reader.js';
import { createPool, ensureDatabaseExists, type Pool } from './persistence/database.js';
import { EventStoreNotifier } from './persistence/event-store-notifier.js';
import { migrate } from './persistence/migrate.js';
import { COMMANDES_PROJECTION, projectCommandes } from './projections/commandes-projection.js';
import { CommandesQueries } from './projections/commandes-queries.js';

export interface ChoreoOptions {
  logger?: Logger;
  consumerTuning?: ConsumerTuning;
  /** How often the relay's process trims the streams (every 10 s by default). */
  streamTrimIntervalMs?: number;
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
 * One choreo process: the HTTP API (always), plus the actors named in ACTORS. Built without starting,
 * so tests can hold every part; `start` begins consuming, `stop` drains and closes in reverse order.
 */
export class Choreo {
  private readonly consumers: StreamConsumer[] = [];
  private readonly readers: CheckpointedReader[] = [];
  private deadlines: DeadlineScheduler | null = null;
  private trimmer: StreamTrimmer | null = null;
  /** Shared by the services this process hosts: each one's events are the next one's commande. */
  private readonly commandes = new CommandeCache();
  private started = false;
  private stopped = false;

  private constructor(
    readonly config: Config,
    readonly pool: Pool,
    readonly redis: Redis,
    readonly metrics: Metrics,
    readonly logger: Logger,
    readonly keys: StreamKeys,
    readonly http: FastifyInstance,
    private readonly notifier: EventStoreNotifier,
    private readonly options: ChoreoOptions,
  ) {}

  static async create(config: Config, options: ChoreoOptions = {}): Promise<Choreo> {
    const logger = options.logger ?? createLogger(config.logLevel);
    await ensureDatabaseExists(config.databaseUrl);
    const pool = createPool(config.databaseUrl, config.poolSize);
    await migrate(pool);
    const redis = createRedis(config.redisUrl);
    const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    const keys = new StreamKeys(config.streamPrefix);
    registerScrapeCollectors({
      registry: metrics.registry,
      pool,
      redis,
      keys,
      logger,
      stuckAfterMs: 2 * config.sagaDeadlineMs,
    });
    const http = await buildApi(
      {
        pool,
        catalogue: new CatalogueRepository(pool),
        clients: new ClientRepository(pool),
        paniers: new PanierRepository(pool),
        checkouts: new CheckoutBatcher(pool),
        ventes: new VentesRepository(pool),
        commandes: new CommandesQueries(pool),
        metrics,
        deadLetters: new DeadLetters(redis, keys),
        readiness: {
          postgres: async () => {
            await pool.query('SELECT 1');
          },
          redis: async () => {
            await redis.ping();
          },
        },
      },
      logger,
    );
    const notifier = new EventStoreNotifier(config.databaseUrl, logger, pool);
    return new Choreo(config, pool, redis, metrics, logger, keys, http, notifier, options);
  }

  hosts(actor: ActorName): boolean {
    return this.config.actors.includes(actor);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // Every process: it wakes this process's readers, and tells the other processes' readers, of appends.
    await this.notifier.start();
    if (this.hosts('relay')) {
      this.readers.push(this.createRelay());
      this.trimmer = this.createStreamTrimmer();
    }
    if (this.hosts('projections')) this.readers.push(this.createCommandesProjection());
    for (const [name, actor] of Object.entries(SERVICE_ACTORS)) {
      if (actor && this.hosts(name as ActorName)) this.consumers.push(this.createServiceConsumer(actor));
    }
    if (this.hosts('saga')) {
      this.consumers.push(this.createSagaConsumer());
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
    this.trimmer?.start();
    this.logger.info({ actors: this.config.actors }, 'choreo started');
  }

  async listen(): Promise<string> {
    return this.http.listen({ port: this.config.port, host: this.config.host });
  }

  /** Stops reading, lets in-flight work finish and be acknowledged, then closes connections. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.http.close();
    await this.deadlines?.stop();
    await this.trimmer?.stop();
    await Promise.all(this.consumers.map((consumer) => consumer.stop()));
    await Promise.all(this.readers.map((reader) => reader.stop()));
    await this.notifier.close();
    this.redis.disconnect();
    await this.pool.end();
    this.logger.info('choreo stopped');
  }

  private consumerTuning(): ConsumerTuning {
    return {
      claimIdleMs: this.config.claimIdleMs,
      maxDeliveries: this.config.maxDeliveries,
      ...this.options.consumerTuning,
    };
  }

  private consumerName(): string {
    return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  private createServiceConsumer(actor: ServiceActor): StreamConsumer {
    return createHostedConsumer({
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
      redisUrl: this.config.redisUrl,
      keys: this.keys,
      consumerName: this.consumerName(),
      logger: this.logger,
      metrics: this.metrics,
      tuning: this.consumerTuning(),
    });
  }

  private createSagaConsumer(): StreamConsumer {
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
    return createHostedConsumer({
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
      redisUrl: this.config.redisUrl,
      keys: this.keys,
      consumerName: this.consumerName(),
      logger: this.logger,
      metrics,
      tuning: this.consumerTuning(),
    });
  }

  private createRelay(): CheckpointedReader {
    return createOutboxRelay({
      pool: this.pool,
      redis: this.redis,
      keys: this.keys,
      notifier: this.notifier,
      logger: this.logger,
      onPublished: (events) => {
        for (const event of events) {
          this.metrics.eventStoreEvents.inc({ event_type: event.event_type, source: event.source });
        }
        this.metrics.relayPublished.inc(events.length);
        const last = events.at(-1);
        if (last) this.metrics.relayPosition.set(last.position);
      },
    });
  }

  /** Next to the relay, the only writer of the streams: it keeps them to what some group still needs. */
  private createStreamTrimmer(): StreamTrimmer {
    return new StreamTrimmer({
      redis: this.redis,
      keys: this.keys,
      consumers: consumerGroupsByStream(),
      retentionMs: this.config.streamRetentionMs,
      logger: this.logger,
      ...(this.options.streamTrimIntervalMs === undefined
        ? {}
        : { intervalMs: this.options.streamTrimIntervalMs }),
      onTrimmed: (stream, entries) => this.metrics.streamEntriesTrimmed.inc({ stream }, entries),
    });
  }

  private createCommandesProjection(): CheckpointedReader {
    return new CheckpointedReader({
      name: COMMANDES_PROJECTION,
      pool: this.pool,
      notifier: this.notifier,
      logger: this.logger,
      handle: projectCommandes,
      // A read model a few tens of milliseconds behind is fresh enough, and far cheaper in batches.
      lingerMs: PROJECTION_LINGER_MS,
    });
  }
}
