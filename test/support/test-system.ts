import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Choreo, type ChoreoOptions } from '../../src/app.js';
import {
  ACTOR_NAMES,
  type ActorName,
  type BusKind,
  type Config,
  DEFAULT_DATA_DIR,
  DEFAULT_EMBEDDED_POSTGRES_PORT,
} from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { HttpClient } from './http-client.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestSystemOptions {
  /**
   * The bus that carries the events: the PostgreSQL bus by default (every run has it). A test of behaviour
   * that does not depend on the bus runs on each one (support/buses.ts: describeOnEachBus).
   */
  bus?: BusKind;
  actors?: ActorName[];
  choreo?: ChoreoOptions;
  /** Configuration for every node of the system, e.g. a short saga deadline. */
  config?: Partial<Config>;
  /** How the nodes reach the test database, e.g. through a proxy that the test can cut. */
  databaseUrl?: (url: string) => string;
}

/**
 * A real choreo against the machine's PostgreSQL (and Redis, on the Redis Streams bus), with its own
 * database and Redis key prefix, listening on a free port. More processes' worth of actors can join it with `addNode`.
 */
export class TestSystem {
  readonly nodes: Choreo[] = [];
  private redisConnection: Redis | null = null;

  private constructor(
    readonly database: TestDatabase,
    readonly streamPrefix: string,
    readonly api: HttpClient,
    private readonly main: Choreo,
    private readonly overrides: Partial<Config>,
  ) {
    this.nodes.push(main);
  }

  static async start(label: string, options: TestSystemOptions = {}): Promise<TestSystem> {
    const database = await createTestDatabase(label);
    const streamPrefix = `test:${label}:${randomBytes(4).toString('hex')}:`;
    const overrides: Partial<Config> = {
      bus: options.bus ?? 'postgres',
      ...(options.databaseUrl ? { databaseUrl: options.databaseUrl(database.url) } : {}),
      ...options.config,
    };
    const main = await Choreo.create(
      { ...testConfig(database.url, streamPrefix, options.actors ?? [...ACTOR_NAMES]), ...overrides },
      {
        logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
        processMetrics: false,
        consumerTuning: { blockMs: 500, claimIdleMs: 1_000 },
        ...options.choreo,
      },
    );
    await main.start();
    const address = await main.listen();
    const config = main.config;
    // Staff by default; a system started without a staff token (to test the generated one) calls anonymously.
    return new TestSystem(
      database,
      streamPrefix,
      new HttpClient(address, config.adminToken ?? null),
      main,
      overrides,
    );
  }

  get choreo(): Choreo {
    return this.main;
  }

  get bus(): BusKind {
    return this.main.busKind;
  }

  /** A connection of the test's own to the system's Redis (Redis Streams bus only), closed by `stop`. */
  get redis(): Redis {
    if (this.bus !== 'redis') throw new Error('this system carries its events on PostgreSQL, not Redis');
    this.redisConnection ??= new Redis(REDIS_URL, { protocol: 2 });
    return this.redisConnection;
  }

  /** The system's name for a Redis stream (its key, under the system's prefix). */
  streamKey(stream: string): string {
    return `${this.streamPrefix}${stream}`;
  }

  /** Another process's worth of actors on the same database and streams (no HTTP listener). */
  async addNode(actors: ActorName[], choreo: ChoreoOptions = {}): Promise<Choreo> {
    const config = { ...testConfig(this.database.url, this.streamPrefix, actors), ...this.overrides };
    const node = await Choreo.create(config, {
      logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
      processMetrics: false,
      consumerTuning: { blockMs: 500, claimIdleMs: 1_000 },
      ...choreo,
    });
    await node.start();
    this.nodes.push(node);
    return node;
  }

  async stopNode(node: Choreo): Promise<void> {
    await node.stop();
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    if (this.bus === 'redis') {
      const redis = this.redis;
      try {
        const keys = await redis.keys(`${this.streamPrefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
        this.redisConnection = null;
      }
    }
    await this.database.drop();
  }
}

/**
 * The staff token of every system this test process starts (CHOREO_ADMIN_TOKEN for the worker processes
 * it spawns): any token works, as long as the system and its callers agree.
 */
export const TEST_STAFF_TOKEN = `test-staff-${randomBytes(24).toString('base64url')}`;

export function testConfig(databaseUrl: string, streamPrefix: string, actors: ActorName[]): Config {
  return {
    adminToken: TEST_STAFF_TOKEN,
    databaseUrl,
    databaseUrlSet: true,
    forceEmbeddedPostgres: false,
    embeddedPostgresPort: DEFAULT_EMBEDDED_POSTGRES_PORT,
    dataDir: DEFAULT_DATA_DIR,
    redisUrl: REDIS_URL,
    redisUrlSet: true,
    bus: 'redis',
    busRebind: false,
    port: 0,
    host: '127.0.0.1',
    actors,
    streamPrefix,
    logLevel: 'silent',
    // Test files run side by side, each with one or more systems: PostgreSQL's 100 connections go round.
    poolSize: 6,
    sagaDeadlineMs: 60_000,
    claimIdleMs: 1_000,
    maxDeliveries: 5,
    streamRetentionMs: 600_000,
  };
}
