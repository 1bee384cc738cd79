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
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const details = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new Error(`invalid configuration: ${details}`);
  }
  const { DATABASE_URL, REDIS_URL, PORT, HOST, ACTORS, STREAM_PREFIX, LOG_LEVEL } = parsed.data;
  return {
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    port: PORT,
    host: HOST,
    actors: ACTORS,
    streamPrefix: STREAM_PREFIX,
    logLevel: LOG_LEVEL,
  };
}
