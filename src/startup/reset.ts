import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { Config } from '../config.js';
import { STREAM_NAMES } from '../domain/events.js';
import { redactUrl } from '../observability/server-url.js';
import { DATABASE_BINDING_KEY } from './bus-binding.js';
import {
  embeddedPostgresFiles,
  runningServer,
  runningWatchdog,
  stopOrphanedServer,
  systemIdentifier,
} from './embedded-postgres.js';
import { probeRedis } from './probe.js';
import { embeddedPostgresDir } from './resolve-database.js';

/** The database choreo uses on the embedded server (resolve-database.ts). */
const EMBEDDED_DATABASE = 'choreo';
/** Kept by choreo in the data folder beside the embedded server's (issue 19's staff token). */
const ADMIN_TOKEN_FILE = 'admin-token';

const bindingSchema = z.object({ system_identifier: z.string(), database: z.string() });

export type ResetOutcome = 'reset' | 'nothing to reset' | 'refused';

/**
 * `npm run reset`: deletes the embedded PostgreSQL's data (and the admin token beside it), and releases
 * the Redis prefix bound to that database, with choreo's keys under it. Refuses while a choreo process
 * uses the server. A Redis prefix bound to another database is left alone.
 */
export async function resetEmbeddedData(
  config: Pick<Config, 'dataDir' | 'redisUrl' | 'streamPrefix'>,
  say: (line: string) => void,
): Promise<ResetOutcome> {
  const pgdata = embeddedPostgresDir(config);
  const running = await runningServer(pgdata);
  if (running) {
    const watchdog = await runningWatchdog(pgdata);
    if (watchdog !== null) {
      say(
        `The embedded PostgreSQL in ${pgdata} is in use by a running choreo (server pid ${running.pid}, ` +
          `port ${running.port}). Stop choreo first (Ctrl-C, or kill its process), then run npm run reset again.`,
      );
      return 'refused';
    }
    say(`stopping the embedded PostgreSQL (pid ${running.pid}) that a choreo process left running`);
    await stopOrphanedServer(running.pid, pgdata);
  }

  const identifier = await systemIdentifier(pgdata);
  if (identifier !== null) await releaseRedisBinding(config, identifier, say);

  const { logFile, watchdogPidFile } = embeddedPostgresFiles(pgdata);
  const scratch = (await readdir(dirname(pgdata)).catch(() => []))
    .filter((name) => name.startsWith(`${basename(pgdata)}.initdb-`))
    .map((name) => join(dirname(pgdata), name));
  const adminToken = join(config.dataDir, ADMIN_TOKEN_FILE);
  const deletions = [pgdata, logFile, watchdogPidFile, adminToken, ...scratch].filter((path) =>
    existsSync(path),
  );
  if (deletions.length === 0) {
    say(`nothing to reset: there is no embedded PostgreSQL data in ${pgdata}`);
    return 'nothing to reset';
  }
  for (const path of deletions) {
    await rm(path, { recursive: true, force: true });
    say(`deleted ${path}`);
  }
  say('the next npm start initialises a new, empty embedded PostgreSQL');
  return 'reset';
}

async function releaseRedisBinding(
  config: Pick<Config, 'redisUrl' | 'streamPrefix'>,
  identifier: string,
  say: (line: string) => void,
): Promise<void> {
  const where = `Redis at ${redactUrl(config.redisUrl)}, STREAM_PREFIX=${JSON.stringify(config.streamPrefix)}`;
  const probe = await probeRedis(config.redisUrl, 1_000);
  if (probe.outcome !== 'answers') {
    say(`no Redis to release a binding from (${where}: ${probe.reason})`);
    return;
  }
  const redis = new Redis(config.redisUrl, { protocol: 2, lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const bindingKey = `${config.streamPrefix}${DATABASE_BINDING_KEY}`;
    const stored = await redis.get(bindingKey);
    if (stored === null) {
      say(`${where}: no database bound to this prefix, nothing to release`);
      return;
    }
    const binding = parseBinding(stored);
    if (binding?.system_identifier !== identifier || binding.database !== EMBEDDED_DATABASE) {
      say(`${where}: bound to another database than the embedded one (${stored}), left alone`);
      return;
    }
    const keys = [
      ...STREAM_NAMES.map((stream) => `${config.streamPrefix}${stream}`),
      `${config.streamPrefix}choreo.relay-marker`,
      `${config.streamPrefix}choreo.dead-letters`,
      bindingKey,
    ];
    const deleted = await redis.del(...keys);
    say(
      `${where}: released the binding to the embedded database and deleted choreo's keys (${deleted} keys)`,
    );
  } finally {
    redis.disconnect();
  }
}

function parseBinding(stored: string): z.infer<typeof bindingSchema> | null {
  try {
    const parsed = bindingSchema.safeParse(JSON.parse(stored));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
