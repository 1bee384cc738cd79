import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * How choreo's connections send statements (installed on each new connection by `createPool`):
 *
 * - every statement with parameters becomes a named prepared statement on its connection, so PostgreSQL
 *   parses and plans it once per connection instead of at each call (the same few statements run
 *   thousands of times a second);
 * - a transaction may hold statements whose results it does not need (its BEGIN, a write, the checkpoint
 *   it moves) until its next statement, which takes them along in one write on the socket: one round trip
 *   instead of one each. The connection is in pg's pipeline mode, so statements go out without waiting for
 *   the answers to the ones before; the held ones are kept back by corking the socket until then.
 */

type Query = (...args: unknown[]) => unknown;

interface HeldStatements {
  corked: boolean;
  /** The first held statement to fail, as its caller mapped it: it fails the statement that carried it. */
  failure: unknown;
  /**
   * A held statement failed in the driver (a value it could not bind, a lost connection) rather than in
   * PostgreSQL: the server did not abort the transaction, and pg may have closed a prepared statement it
   * still counts as parsed. The transaction must not commit, and the connection is not to be reused.
   */
  failedInDriver: boolean;
}

const unroutedQueries = new WeakMap<pg.PoolClient, Query>();
const heldOn = new WeakMap<pg.PoolClient, HeldStatements>();
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `choreo-${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** A statement with parameters, named so that its connection prepares it once. */
function preparedConfig(text: string, values: unknown[]): pg.QueryConfig {
  return { name: statementName(text), text, values };
}

function send(query: Query, args: unknown[]): unknown {
  const [text, values, ...rest] = args;
  if (typeof text === 'string' && Array.isArray(values)) return query(preparedConfig(text, values), ...rest);
  return query(...args);
}

function uncork(client: pg.PoolClient, held: HeldStatements): void {
  if (!held.corked) return;
  held.corked = false;
  client.connection.stream.uncork();
}

export function routeStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query;
  unroutedQueries.set(client, query);
  const routed = (...args: unknown[]): unknown => {
    const result = send(query, args);
    const held = heldOn.get(client);
    if (!held) return result;
    // Queued behind the held statements: one write sends them all.
    uncork(client, held);
    if (!(result instanceof Promise)) return result;
    // After a held statement failed, what carried it fails too (or, for a COMMIT, answers ROLLBACK):
    // the caller hears of the cause, not of "current transaction is aborted".
    return result.then(
      (value: unknown) => {
        if (held.failure !== undefined) throw held.failure;
        return value;
      },
      (error: unknown) => {
        throw held.failure ?? error;
      },
    );
  };
  client.query = routed as typeof client.query;
}

/** From here until `endHolding`, statements may be held on this client (see `holdStatement`). */
export function startHolding(client: pg.PoolClient): void {
  if (!unroutedQueries.has(client) || !client.pipeline) {
    throw new Error(
      'transactions need a client of createPool: its connections pipeline and route statements',
    );
  }
  heldOn.set(client, { corked: false, failure: undefined, failedInDriver: false });
}

/** What the first failed held statement of this transaction threw (mapped), if one failed yet. */
export function heldFailureOf(client: pg.PoolClient): unknown {
  return heldOn.get(client)?.failure;
}

export function heldFailedInDriver(client: pg.PoolClient): boolean {
  return heldOn.get(client)?.failedInDriver ?? false;
}

export function endHolding(client: pg.PoolClient): void {
  const held = heldOn.get(client);
  if (held) uncork(client, held);
  heldOn.delete(client);
}

/**
 * Sends `text` with the transaction's next statement (at the latest its COMMIT or ROLLBACK) rather than
 * on its own: one round trip fewer, for a statement whose result the caller does not need. If it fails,
 * the transaction is aborted and the statement that carried it throws `mapError(error)`.
 */
export function holdStatement(
  client: pg.PoolClient,
  text: string,
  values?: readonly unknown[],
  mapError: (error: unknown) => unknown = (error) => error,
): void {
  const held = heldOn.get(client);
  const query = unroutedQueries.get(client);
  if (!held || !query) throw new Error('holdStatement is for the client of a transaction (withTransaction)');
  if (!held.corked) {
    client.connection.stream.cork();
    held.corked = true;
  }
  const config = values ? preparedConfig(text, [...values]) : { text };
  // A pg.Query with a callback rather than a promise: a value the driver cannot send fails it within
  // this call, so the failure is known before anything can carry a COMMIT out.
  query(
    new pg.Query(config, (error: Error | null | undefined) => {
      if (!error) return;
      const fromServer = error instanceof pg.DatabaseError;
      // Refused because an earlier statement of the transaction failed: that failure is the one to report.
      if (fromServer && error.code === '25P02') return;
      held.failure ??= mapError(error);
      if (!fromServer) held.failedInDriver = true;
    }),
  );
}
