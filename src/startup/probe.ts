import { Redis } from 'ioredis';
import pg from 'pg';
import { reasonOf } from '../observability/server-url.js';

/**
 * What a server said when asked once: it answered and let us in, it answered but refused us (wrong
 * password, no such role), or nothing answered in time.
 */
export type ProbeResult = { outcome: 'answers' } | { outcome: 'refuses' | 'silent'; reason: string };

/** A SQLSTATE: the server itself answered (as opposed to a socket error raised by the driver). */
const SQLSTATE = /^[0-9A-Z]{5}$/;
/** Answered, but cannot take connections yet (starting up, shutting down, recovering). */
const NOT_READY_SQLSTATES = new Set(['57P03', '57P01']);
/** The database does not exist yet: the server is there, and `ensureDatabaseExists` creates it. */
const MISSING_DATABASE = '3D000';

/** Connects once to `url` and runs `SELECT 1`, within `timeoutMs`. */
export async function probePostgres(url: string, timeoutMs: number): Promise<ProbeResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A server that goes away after connecting emits 'error' on the client; unheard, it would crash us.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { outcome: 'answers' };
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : '';
    if (code === MISSING_DATABASE) return { outcome: 'answers' };
    if (SQLSTATE.test(code) && !NOT_READY_SQLSTATES.has(code)) {
      return { outcome: 'refuses', reason: reasonOf(error) };
    }
    return { outcome: 'silent', reason: reasonOf(error) };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Sends one PING to `url` within `timeoutMs`: no retry, no offline queue, and no 'error' event left
 * unheard (ioredis would print it with a stack trace).
 */
export async function probeRedis(url: string, timeoutMs: number): Promise<ProbeResult> {
  const redis = new Redis(url, {
    protocol: 2,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  // ioredis rejects connect() with "Connection is closed."; the reason (ECONNREFUSED…) comes as an event.
  let socketError: unknown;
  redis.on('error', (error: unknown) => {
    socketError = error;
  });
  try {
    await redis.connect();
    const pong = await redis.ping();
    return pong === 'PONG'
      ? { outcome: 'answers' }
      : { outcome: 'refuses', reason: `PING answered ${JSON.stringify(pong)}` };
  } catch (error) {
    // NOAUTH, WRONGPASS…: a Redis is there but will not serve us.
    const reason = reasonOf(socketError ?? error);
    const answered = /^(NOAUTH|WRONGPASS|ERR|NOPERM)\b/.test(reason);
    return { outcome: answered ? 'refuses' : 'silent', reason };
  } finally {
    redis.disconnect();
  }
}
