import { Redis } from 'ioredis';
import { z } from 'zod';
import type { BusKind } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { redactUrl } from '../observability/server-url.js';
import type { Pool } from '../persistence/database.js';
import { StartupError } from './startup-error.js';

/** The Redis key (under STREAM_PREFIX) naming the database whose events that prefix's streams carry. */
export const DATABASE_BINDING_KEY = 'choreo.database';

export interface BusBindingOptions {
  redisUrl: string;
  streamPrefix: string;
  logger: Logger;
  /**
   * BUS_REBIND=1: record this process's bus as the database's bus even if another one is recorded. For
   * moving a database to another bus for good, with every other process stopped.
   */
  rebind?: boolean;
}

const busSettingSchema = z.object({ value: z.enum(['redis', 'postgres']), set_at: z.date() });
const databaseIdentitySchema = z.object({
  system_identifier: z.string(),
  database: z.string(),
  server: z.string(),
});
const bindingSchema = z.object({
  system_identifier: z.string(),
  database: z.string(),
  /** For the error message only: where that database was reached from when it was bound. */
  server: z.string(),
  bound_at: z.string(),
});
type DatabaseBinding = z.infer<typeof bindingSchema>;

/**
 * Makes sure this process carries its events on the same bus as every other process of its database,
 * and, on Redis, that its stream prefix carries no other database's events. Either refusal is a
 * StartupError: two processes of one database on two buses would each see half of the events, and two
 * databases on one prefix would take each other's events from the same consumer groups.
 */
export async function bindBus(pool: Pool, bus: BusKind, options: BusBindingOptions): Promise<void> {
  await bindDatabaseToBus(pool, bus, options);
  if (bus === 'redis') await bindPrefixToDatabase(pool, options);
}

async function bindDatabaseToBus(pool: Pool, bus: BusKind, options: BusBindingOptions): Promise<void> {
  // The first process of a database records its bus; the others read it back (and a rebind replaces it).
  const recordSql = options.rebind
    ? `INSERT INTO choreo_settings (key, value) VALUES ('bus', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, set_at = now()
       WHERE choreo_settings.value IS DISTINCT FROM EXCLUDED.value`
    : `INSERT INTO choreo_settings (key, value) VALUES ('bus', $1) ON CONFLICT (key) DO NOTHING`;
  const recorded = await pool.query(recordSql, [bus]);
  const { rows } = await pool.query(`SELECT value, set_at FROM choreo_settings WHERE key = 'bus'`);
  const setting = busSettingSchema.parse(rows[0]);
  if (options.rebind && recorded.rowCount === 1) {
    options.logger.warn(
      { bus },
      `BUS_REBIND: this database's events are carried on ${busName(bus)} from now on; ` +
        'unset BUS_REBIND for the next starts',
    );
  }
  if (setting.value === bus) return;

  const other = setting.value;
  throw new StartupError(
    [
      `This database's events are carried on ${busName(other)} (recorded ${setting.set_at.toISOString()}), ` +
        `but this process would use ${busName(bus)}.`,
      'Every process of one database must use the same bus: two processes on two buses would each see ' +
        'half of the events.',
      other === 'redis'
        ? 'Set BUS=redis and REDIS_URL to the Redis the other processes use (and make sure it answers).'
        : 'Set BUS=postgres (or leave BUS=auto with REDIS_URL unset on a machine without Redis).',
      `To move this database to ${busName(bus)} for good: stop every choreo process of it, then start ` +
        'one with BUS_REBIND=1 (it records the new bus; unset it afterwards). Events the old bus carried ' +
        'but no consumer handled yet are not carried by the new one: stop while nothing is in flight.',
    ].join('\n'),
  );
}

async function bindPrefixToDatabase(pool: Pool, options: BusBindingOptions): Promise<void> {
  const ours: DatabaseBinding = {
    ...(await databaseIdentity(pool)),
    bound_at: new Date().toISOString(),
  };
  const key = `${options.streamPrefix}${DATABASE_BINDING_KEY}`;
  const redis = new Redis(options.redisUrl, {
    protocol: 2,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => {});
  let stored: string | null;
  try {
    await redis.connect();
    await redis.set(key, JSON.stringify(ours), 'NX');
    stored = await redis.get(key);
  } catch (error) {
    throw new StartupError(
      `Redis at ${redactUrl(options.redisUrl)} (REDIS_URL) failed while binding STREAM_PREFIX ` +
        `${JSON.stringify(options.streamPrefix)} to this database: ${error instanceof Error ? error.message : String(error)}.`,
    );
  } finally {
    redis.disconnect();
  }
  const bound = parseBinding(stored);
  if (bound && bound.system_identifier === ours.system_identifier && bound.database === ours.database) return;

  const prefix = JSON.stringify(options.streamPrefix);
  throw new StartupError(
    [
      `The Redis streams under STREAM_PREFIX=${prefix} at ${redactUrl(options.redisUrl)} (REDIS_URL) carry the ` +
        `events of another database: ${bound ? describeBinding(bound) : `an unreadable binding ${JSON.stringify(stored)}`}; ` +
        `this process uses ${describeBinding(ours)}.`,
      "One prefix belongs to one database: two databases on one prefix would take each other's events " +
        'from the same consumer groups.',
      'Give this process its own prefix (set STREAM_PREFIX, e.g. STREAM_PREFIX=mysystem:), or point ' +
        'DATABASE_URL at the database bound to this prefix.',
      'If that other database is gone for good, release the prefix: ' +
        `redis-cli -u ${redactUrl(options.redisUrl)} DEL ${shellQuote(key)}` +
        ' (npm run reset does it for the embedded default database).',
    ].join('\n'),
  );
}

/**
 * `pg_control_system()` identifies the cluster (a new one with every initdb), the name the database in
 * it; the server's address only helps a reader of the error tell them apart.
 */
async function databaseIdentity(pool: Pool): Promise<z.infer<typeof databaseIdentitySchema>> {
  const { rows } = await pool.query(
    `SELECT (SELECT system_identifier FROM pg_control_system())::text AS system_identifier,
            current_database() AS database,
            coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'a Unix socket') AS server`,
  );
  return databaseIdentitySchema.parse(rows[0]);
}

function parseBinding(stored: string | null): DatabaseBinding | null {
  if (stored === null) return null;
  try {
    const parsed = bindingSchema.safeParse(JSON.parse(stored));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function describeBinding(binding: DatabaseBinding): string {
  return `database "${binding.database}" of the PostgreSQL cluster ${binding.system_identifier} (reached at ${binding.server}, bound ${binding.bound_at})`;
}

function busName(bus: BusKind): string {
  return bus === 'redis' ? 'Redis Streams (BUS=redis)' : 'the PostgreSQL bus (BUS=postgres)';
}

function shellQuote(text: string): string {
  return /^[\w.:@/-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
