import { z } from 'zod';

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

const envSchema = z.object({
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/choreo'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  ACTORS: actorsSchema.default([...ACTOR_NAMES]),
  STREAM_PREFIX: z.string().default(''),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  SAGA_DEADLINE_MS: z.coerce.number().int().positive().default(60_000),
  CONSUMER_CLAIM_IDLE_MS: z.coerce.number().int().positive().default(30_000),
  CONSUMER_MAX_DELIVERIES: z.coerce.number().int().positive().default(5),
  STREAM_RETENTION_MS: z.coerce.number().int().min(0).default(600_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  databaseUrl: string;
  redisUrl: string;
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
  return {
    databaseUrl: data.DATABASE_URL,
    redisUrl: data.REDIS_URL,
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
  };
}
