import pg from 'pg';
import {
  endHolding,
  heldFailedInDriver,
  heldFailureOf,
  holdStatement,
  routeStatements,
  startHolding,
} from './statement-pipeline.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const parseInt8 = (value: string): number => Number.parseInt(value, 10);

/**
 * bigint columns (positions, cents) fit in a JS number for any realistic volume; choreo's connections parse
 * them as numbers. Set per pool rather than on pg's global parsers, which another library in the same
 * process may set otherwise (Emmett's driver sets them to BigInt).
 */
const choreoTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

export function createPool(databaseUrl: string, max = 20): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: 5_000,
    types: choreoTypes,
    pipeline: true,
  });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  pool.on('connect', routeStatements);
  return pool;
}

/** Creates the database named in the URL when it does not exist yet, so `npm start` works on a fresh server. */
export async function ensureDatabaseExists(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const databaseName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!databaseName) return;
  const maintenanceUrl = new URL(databaseUrl);
  maintenanceUrl.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenanceUrl.toString() });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName]);
    if (existing.rowCount === 0) {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(databaseName)}`).catch((error: unknown) => {
        // Another process created it between our check and our CREATE.
        if (!(error instanceof Error && 'code' in error && error.code === '42P04')) throw error;
      });
    }
  } finally {
    await client.end();
  }
}

const appendedIn = new WeakSet<pg.PoolClient>();
const committedListeners = new WeakMap<pg.Pool, Set<() => void>>();

/** Records that the transaction open on `tx` appended events; its pool's listeners hear of it after COMMIT. */
export function markEventsAppended(tx: pg.PoolClient): void {
  appendedIn.add(tx);
}

/**
 * After an append: on a transaction's client, remembers it for after COMMIT; on the pool itself (the
 * statement was its own transaction, already committed), tells the listeners now.
 */
export function eventsAppended(db: pg.Pool | pg.PoolClient): void {
  if (db instanceof pg.Pool) tellCommitted(db);
  else markEventsAppended(db);
}

/** A listener's failure must not make a committed transaction look failed to its caller. */
function tellCommitted(pool: pg.Pool): void {
  for (const listener of committedListeners.get(pool) ?? []) {
    try {
      listener();
    } catch {
      // the readers also poll
    }
  }
}

/** Calls `listener` each time a transaction of `withTransaction(pool, ...)` that appended events commits. */
export function onEventsCommitted(pool: pg.Pool, listener: () => void): () => void {
  const listeners = committedListeners.get(pool) ?? new Set();
  committedListeners.set(pool, listeners);
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Checks a client out of the pool with a listener for connection errors: pg emits 'error' on a checked-out
 * client whose server goes away between queries, and with no listener that would crash the process.
 * The client is discarded on release if that happened.
 */
export async function checkOut(
  pool: pg.Pool,
): Promise<{ client: pg.PoolClient; release: (broken?: boolean) => void }> {
  const client = await pool.connect();
  let lost = false;
  const onError = () => {
    lost = true;
  };
  client.on('error', onError);
  return {
    client,
    release: (broken = false) => {
      client.removeListener('error', onError);
      client.release(broken || lost);
    },
  };
}

/**
 * Runs `work` in a transaction on a client of a `createPool` pool. BEGIN goes out with the first statement
 * of `work`, and what `work` held (`holdStatement`) with the COMMIT: a transaction of n statements costs n
 * round trips, not n + 2.
 */
export async function withTransaction<T>(pool: pg.Pool, work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const { client, release } = await checkOut(pool);
  let broken = false;
  try {
    startHolding(client);
    holdStatement(client, 'BEGIN');
    const result = await work(client);
    // A held statement that failed before reaching PostgreSQL left the transaction open: no COMMIT.
    const failedEarly = heldFailureOf(client);
    if (failedEarly !== undefined) throw failedEarly;
    const commit = await client.query('COMMIT');
    // A statement of `work` failed and its error was swallowed: PostgreSQL rolled the transaction back.
    if (commit.command !== 'COMMIT') throw new Error(`the transaction was rolled back at ${commit.command}`);
    if (appendedIn.delete(client)) tellCommitted(pool);
    return result;
  } catch (error) {
    appendedIn.delete(client);
    broken = heldFailedInDriver(client);
    endHolding(client);
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    endHolding(client);
    // A connection that could not even roll back is discarded rather than handed to the next caller.
    release(broken);
  }
}

export function pgErrorCode(error: unknown): string | undefined {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}
