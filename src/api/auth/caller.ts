import type { FastifyRequest } from 'fastify';
import { NotFoundError } from '../../domain/errors.js';

/**
 * Who sent a request, from its bearer token: staff (every route, acting for any client), a client (its own
 * cart, checkouts, commandes and balance, and what every client may read), or Prometheus with the metrics
 * token (GET /metrics only).
 */
export type Caller = { role: 'staff' } | { role: 'client'; clientId: number } | { role: 'metrics' };

/**
 * What a route requires, declared on each one (`config: { access }`):
 * - `public`: anyone, no token read;
 * - `client`: any client or staff; the handler scopes what it does to the caller (assertActsFor);
 * - `staff`: staff only;
 * - `metrics`: staff or the metrics token.
 */
export const ROUTE_ACCESS = ['public', 'client', 'staff', 'metrics'] as const;
export type RouteAccess = (typeof ROUTE_ACCESS)[number];

export const STAFF: Caller = { role: 'staff' };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Set by the access control's onRequest hook; null on a public route (no token is read there). */
    caller: Caller | null;
    /**
     * Who the request's token names now (null: nobody any more), asked again of the authenticator: for a
     * request that lasts (an event stream), whose token may be replaced while it is open.
     */
    currentCaller(): Promise<Caller | null>;
  }
}

/** The caller of a request to a route that is not public (the access control let it through). */
export function callerOf(request: FastifyRequest): Caller {
  const { caller } = request;
  if (caller === null) {
    throw new Error(`${request.method} ${request.url} asked for its caller, but its route is public`);
  }
  return caller;
}

/** Whether two callers are the same one (a client: the same client). */
export function sameCaller(a: Caller | null, b: Caller | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.role === 'client' || b.role === 'client') {
    return a.role === 'client' && b.role === 'client' && a.clientId === b.clientId;
  }
  return a.role === b.role;
}

/** Whether the caller may act for this client: staff for every client, a client for itself. */
export function actsFor(caller: Caller, clientId: number): boolean {
  return caller.role === 'staff' || (caller.role === 'client' && caller.clientId === clientId);
}

/**
 * Refuses a client that touches another client's resource with the answer an unknown id gets (404, the
 * same message), so that a client learns nothing of what other clients have.
 */
export function assertActsFor(
  caller: Caller,
  clientId: number,
  notFoundMessage = `client ${clientId} not found`,
): void {
  if (!actsFor(caller, clientId)) throw new NotFoundError(notFoundMessage);
}

/** The client a listing is limited to: the caller itself for a client, whatever was asked for staff. */
export function clientScope(caller: Caller, asked: number | undefined): number | undefined {
  if (caller.role !== 'client') return asked;
  if (asked !== undefined) assertActsFor(caller, asked);
  return caller.clientId;
}
