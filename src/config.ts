import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/choreo';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Not 5432, so that the embedded server never takes the place of (or collides with) an installed one. */
export const DEFAULT_EMBEDDED_POSTGRES_PORT = 54329;
/** Git-ignored: the embedded PostgreSQL's data and whatever else a local run keeps. */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../.choreo', import.meta.url));

/** The transport that carries events between actors; `auto` picks Redis when one answers. */
export type BusKind = 'redis' | 'postgres';
export type BusChoice = 'auto' | BusKind;

/** An empty variable (`DATABASE_URL=` in a compose file) counts as unset. */
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

/** Checkouts per second each client may sustain, and at once after a pause (see README, Configuration). */
export const DEFAULT_CHECKOUT_RATE_LIMIT = 30;
export const DEFAULT_CHECKOUT_RATE_BURST = 60;
/**
 * Entries in one Redis stream beyond which choreo warns (about 450 MB of Redis memory per million): nothing
 * caps a stream, whose entries stay until every group acknowledged them (see StreamTrimmer).
 */
export const DEFAULT_STREAM_LENGTH_WARNING = 1_000_000;
/** How long a checkout's Idempotency-Key is recognised: a retry with it after that creates a new commande. */
export const DEFAULT_IDEMPOTENCY_KEY_RETENTION_MS = 24 * 60 * 60 * 1_000;
/** Checkouts that may wait for the one transaction in progress before more are refused with 503. */
export const DEFAULT_CHECKOUT_MAX_WAITING = 5_000;
/** The largest request body accepted; the largest legitimate one (a product, 200 characters) is under 2 KiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 16_384;

const corsOriginsSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  )
  .pipe(
    z.array(
      z
        .url()
        .refine(
          (origin) => URL.canParse(origin) && new URL(origin).origin === origin,
          'must be an origin: scheme://host[:port], without a path or a trailing slash',
        ),
    ),
  );

export const ACTOR_NAMES = ['panier', 'stock', 'client', 'ventes', 'saga', 'relay', 'projections'] as const;
export type ActorName = (typeof ACTOR_NAMES)[number];

const actorsSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.union([z.literal('all'), z.enum(ACTOR_NAMES)])).min(1))
  .transform((names): ActorName[] => (names.includes('all') ? [...ACTOR_NAMES] : (names as ActorName[])));

/**
 * A bearer token chosen by the operator: visible ASCII (it travels in a header), long enough not to be
 * guessed, and not shaped like a client's token (whose prefix says which client it is).
 */
const operatorToken = (variable: string) =>
  optionalString.pipe(
    z
      .string()
      .min(16, `${variable} must be at least 16 characters (e.g. openssl rand -base64 32)`)
      .max(512)
      .regex(/^[\x21-\x7e]+$/, `${variable} must be visible ASCII characters, without spaces`)
      .refine(
        (token) => !token.startsWith('choreo_client_'),
        `${variable} must not start with choreo_client_`,
      )
      .optional(),
  );

const envSchema = z
  .object({
    DATABASE_URL: optionalString,
    REDIS_URL: optionalString,
    BUS: z.enum(['auto', 'redis', 'postgres']).default('auto'),
    BUS_REBIND: z
      .enum(['0', '1', 'true', 'false', ''])
      .default('0')
      .transform((value) => value === '1' || value === 'true'),
    CHOREO_DATA_DIR: optionalString,
    EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(DEFAULT_EMBEDDED_POSTGRES_PORT),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().default('0.0.0.0'),
    ACTORS: actorsSchema.default([...ACTOR_NAMES]),
    STREAM_PREFIX: z.string().default(''),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
    SAGA_DEADLINE_MS: z.coerce.number().int().positive().default(60_000),
    CONSUMER_CLAIM_IDLE_MS: z.coerce.number().int().positive().default(30_000),
    CONSUMER_MAX_DELIVERIES: z.coerce.number().int().positive().default(5),
    STREAM_RETENTION_MS: z.coerce.number().int().min(0).default(600_000),
    STREAM_LENGTH_WARNING: z.coerce.number().int().min(1).default(DEFAULT_STREAM_LENGTH_WARNING),
    CHECKOUT_RATE_LIMIT: z.coerce.number().min(0).default(DEFAULT_CHECKOUT_RATE_LIMIT),
    CHECKOUT_RATE_BURST: z.coerce.number().int().min(1).default(DEFAULT_CHECKOUT_RATE_BURST),
    CHECKOUT_MAX_WAITING: z.coerce.number().int().min(1).default(DEFAULT_CHECKOUT_MAX_WAITING),
    IDEMPOTENCY_KEY_RETENTION_MS: z.coerce
      .number()
      .int()
      .min(60_000)
      .default(DEFAULT_IDEMPOTENCY_KEY_RETENTION_MS),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).default(DEFAULT_BODY_LIMIT_BYTES),
    CORS_ORIGINS: optionalString.pipe(corsOriginsSchema.optional()),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    CHOREO_ADMIN_TOKEN: operatorToken('CHOREO_ADMIN_TOKEN'),
    CHOREO_METRICS_TOKEN: operatorToken('CHOREO_METRICS_TOKEN'),
  })
  .refine(
    (env) => env.CHOREO_METRICS_TOKEN === undefined || env.CHOREO_METRICS_TOKEN !== env.CHOREO_ADMIN_TOKEN,
    {
      path: ['CHOREO_METRICS_TOKEN'],
      // The same token for both would make staff a reader of /metrics only: say so rather than lock staff out.
      message: 'must differ from CHOREO_ADMIN_TOKEN (Prometheus gets a token good for /metrics only)',
    },
  );

export interface Config {
  /** The PostgreSQL to use; after `resolveDatabase`, the embedded server's when that one is used. */
  databaseUrl: string;
  /** DATABASE_URL was set: that server or nothing, never the embedded one instead. */
  databaseUrlSet: boolean;
  /** DATABASE_URL=embedded: the embedded server even when a PostgreSQL answers at the default address. */
  forceEmbeddedPostgres: boolean;
  /** The embedded server's port on 127.0.0.1. */
  embeddedPostgresPort: number;
  /** Where a local run keeps its data (the embedded PostgreSQL in `<dataDir>/postgres`). */
  dataDir: string;
  redisUrl: string;
  /** REDIS_URL was set: Redis must answer there, never a silent switch to the PostgreSQL bus. */
  redisUrlSet: boolean;
  /** BUS: which transport carries the events; `auto` is Redis when one answers, PostgreSQL otherwise. */
  bus: BusChoice;
  /**
   * BUS_REBIND=1: record this process's bus as its database's bus, replacing the one recorded (see
   * bindBus); for moving a database to another bus for good, with every other process stopped.
   */
  busRebind: boolean;
  port: number;
  host: string;
  actors: ActorName[];
  /** Prepended to every Redis key, so that several systems (or test files) share one Redis. */
  streamPrefix: string;
  logLevel: string;
  /** PostgreSQL connections this process may hold (plus one for LISTEN). */
  poolSize: number;
  /** A commande waiting on a service longer than this (since its last event) expires and is compensated. */
  sagaDeadlineMs: number;
  /** An entry pending this long with a consumer (dead or stuck) is claimed by another. */
  claimIdleMs: number;
  /** Deliveries that failed before an entry goes to the dead-letter stream. */
  maxDeliveries: number;
  /**
   * Stream entries every consumer group has acknowledged are removed once older than this (see
   * StreamTrimmer).
   */
  streamRetentionMs: number;
  /**
   * A Redis stream longer than this is logged (naming its groups and how far behind each is) and reported
   * by `redis_stream_near_bound`. Unset, in a Config written by hand: DEFAULT_STREAM_LENGTH_WARNING.
   */
  streamLengthWarning?: number;
  /**
   * Checkouts per second each client (the `:clientId` of the checkout) may sustain, in this process's memory;
   * 0 turns the limit off. `loadConfig` sets it (DEFAULT_CHECKOUT_RATE_LIMIT unless CHECKOUT_RATE_LIMIT says
   * otherwise); unset, in a Config written by hand (tests that order in a tight loop), there is no limit.
   */
  checkoutRateLimit?: number;
  /** Checkouts a client may send at once after a pause. Unset: DEFAULT_CHECKOUT_RATE_BURST. */
  checkoutRateBurst?: number;
  /**
   * Checkouts (without an Idempotency-Key) that may wait for the transaction in progress; past it, 503.
   * Unset: DEFAULT_CHECKOUT_MAX_WAITING.
   */
  checkoutMaxWaiting?: number;
  /**
   * How long a checkout's Idempotency-Key is recognised; older ones are pruned. Unset:
   * DEFAULT_IDEMPOTENCY_KEY_RETENTION_MS.
   */
  idempotencyKeyRetentionMs?: number;
  /** The largest request body accepted (413 beyond). Unset: DEFAULT_BODY_LIMIT_BYTES. */
  bodyLimitBytes?: number;
  /** The origins whose browsers may call the API (CORS); unset or empty: no CORS header at all. */
  corsOrigins?: string[];
  /**
   * CHOREO_ADMIN_TOKEN: the staff token. Unset: the database's, generated by its first process into
   * `<dataDir>/admin-token` (src/api/auth/staff-token.ts).
   */
  adminToken?: string | undefined;
  /** CHOREO_METRICS_TOKEN: a token good for GET /metrics only (Prometheus); unset: staff only. */
  metricsToken?: string | undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const details = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new Error(`invalid configuration: ${details}`);
  }
  const data = parsed.data;
  const forceEmbeddedPostgres = data.DATABASE_URL === 'embedded';
  const databaseUrl = forceEmbeddedPostgres ? undefined : data.DATABASE_URL;
  return {
    databaseUrl: databaseUrl ?? DEFAULT_DATABASE_URL,
    databaseUrlSet: databaseUrl !== undefined,
    forceEmbeddedPostgres,
    embeddedPostgresPort: data.EMBEDDED_POSTGRES_PORT,
    dataDir: data.CHOREO_DATA_DIR === undefined ? DEFAULT_DATA_DIR : resolve(data.CHOREO_DATA_DIR),
    redisUrl: data.REDIS_URL ?? DEFAULT_REDIS_URL,
    redisUrlSet: data.REDIS_URL !== undefined,
    bus: data.BUS,
    busRebind: data.BUS_REBIND,
    port: data.PORT,
    host: data.HOST,
    actors: data.ACTORS,
    streamPrefix: data.STREAM_PREFIX,
    logLevel: data.LOG_LEVEL,
    poolSize: data.DATABASE_POOL_SIZE,
    sagaDeadlineMs: data.SAGA_DEADLINE_MS,
    claimIdleMs: data.CONSUMER_CLAIM_IDLE_MS,
    maxDeliveries: data.CONSUMER_MAX_DELIVERIES,
    streamRetentionMs: data.STREAM_RETENTION_MS,
    streamLengthWarning: data.STREAM_LENGTH_WARNING,
    checkoutRateLimit: data.CHECKOUT_RATE_LIMIT,
    checkoutRateBurst: data.CHECKOUT_RATE_BURST,
    checkoutMaxWaiting: data.CHECKOUT_MAX_WAITING,
    idempotencyKeyRetentionMs: data.IDEMPOTENCY_KEY_RETENTION_MS,
    bodyLimitBytes: data.BODY_LIMIT_BYTES,
    corsOrigins: data.CORS_ORIGINS ?? [],
    adminToken: data.CHOREO_ADMIN_TOKEN,
    metricsToken: data.CHOREO_METRICS_TOKEN,
  };
}
