import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Authenticator } from './authenticator.js';
import { type Caller, ROUTE_ACCESS, type RouteAccess } from './caller.js';
import { bearerToken } from './tokens.js';

/** A route of the app with the access it declared. */
export interface DeclaredRoute {
  method: string;
  url: string;
  access: RouteAccess;
}

export interface AccessControlOptions {
  /**
   * Routes registered by a plugin that cannot declare them (Swagger UI's, under /docs), each prefix with
   * its access: the declaration for all the routes under it.
   */
  prefixes?: readonly { prefix: string; access: RouteAccess }[];
}

const routeTables = new WeakMap<FastifyInstance, DeclaredRoute[]>();
const inProcessTokens = new WeakMap<FastifyInstance, string>();

const WWW_AUTHENTICATE = 'Bearer realm="choreo"';

function isRouteAccess(value: unknown): value is RouteAccess {
  return typeof value === 'string' && (ROUTE_ACCESS as readonly string[]).includes(value);
}

function allows(access: Exclude<RouteAccess, 'public'>, caller: Caller): boolean {
  if (caller.role === 'staff') return true;
  if (access === 'client') return caller.role === 'client';
  if (access === 'metrics') return caller.role === 'metrics';
  return false;
}

/** How many Authorization headers the request carries (rawHeaders alternates names and values). */
function authorizationHeaders(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index]?.toLowerCase() === 'authorization') count += 1;
  }
  return count;
}

function refusal(access: Exclude<RouteAccess, 'public'>, caller: Caller): string {
  if (caller.role === 'metrics') return 'the metrics token is good for GET /metrics only';
  return access === 'metrics'
    ? 'this route is for staff and Prometheus only'
    : 'this route is for staff only';
}

/**
 * Deny by default: every route must declare its access (`config: { access }`), or registering it throws,
 * so a route without a rule is never served. Then, on each request to a route that is not public, the
 * bearer token (the Authorization header only: never a query string or a cookie, which end up in logs and
 * histories) names the caller: none or a bad one answers 401, a caller the route is not for 403. A refused
 * request is answered before its body is read, so it writes nothing.
 */
export function registerAccessControl(
  app: FastifyInstance,
  authenticator: Authenticator,
  options: AccessControlOptions = {},
): void {
  const routes: DeclaredRoute[] = [];
  routeTables.set(app, routes);
  inProcessTokens.set(app, authenticator.inProcessToken);
  app.decorateRequest('caller', null);

  app.addHook('onRoute', (route: RouteOptions) => {
    const byPrefix = options.prefixes?.find(
      ({ prefix }) => route.url === prefix || route.url.startsWith(`${prefix}/`),
    );
    const access: unknown = route.config?.access ?? byPrefix?.access;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!isRouteAccess(access)) {
      throw new Error(
        `${methods.join(',')} ${route.url} declares no access: add config: { access: ${ROUTE_ACCESS.map((name) => `'${name}'`).join(' | ')} } (a route without a rule is not served)`,
      );
    }
    route.config = { ...route.config, access };
    // `/` in a plugin with a prefix is served at `/prefix` and `/prefix/`, the second without its own onRoute.
    const { routePath, prefix } = route as RouteOptions & { routePath?: string; prefix?: string };
    const urls =
      routePath === '' && prefix !== undefined && prefix !== '' && route.prefixTrailingSlash !== 'no-slash'
        ? [route.url, `${route.url}/`]
        : [route.url];
    for (const method of methods) for (const url of urls) routes.push({ method, url, access });
  });

  // Asks the token of a request again (an open event stream's, say): null once it names nobody.
  app.decorateRequest('currentCaller', function currentCaller(this: FastifyRequest) {
    const token = bearerToken(this.headers.authorization);
    return token === undefined ? Promise.resolve(null) : authenticator.callerOf(token);
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const access = request.routeOptions.config.access;
    // No route (fastify's 404), or a public one: no token is read.
    if (access === undefined || access === 'public') return;
    // Node keeps the first of several Authorization headers, a proxy in front may act on the last: with
    // more than one, who the caller is depends on who reads it, so none is read.
    if (authorizationHeaders(request.raw.rawHeaders) > 1) {
      return reply
        .status(400)
        .header('www-authenticate', `${WWW_AUTHENTICATE}, error="invalid_request"`)
        .send({ message: 'send one Authorization header, not several' });
    }
    const header = request.headers.authorization;
    const token = bearerToken(header);
    request.caller = token === undefined ? null : await authenticator.callerOf(token);
    if (request.caller === null) {
      return reply
        .status(401)
        .header(
          'www-authenticate',
          header === undefined ? WWW_AUTHENTICATE : `${WWW_AUTHENTICATE}, error="invalid_token"`,
        )
        .send({
          message:
            header === undefined
              ? 'authentication required: send Authorization: Bearer <token>'
              : 'the bearer token is not valid (Authorization: Bearer <token>)',
        });
    }
    if (!allows(access, request.caller)) {
      return reply.status(403).send({ message: refusal(access, request.caller) });
    }
  });
}

/** Every route of the app with the access it declared, in the order they were registered (HEAD included). */
export function declaredRoutes(app: FastifyInstance): readonly DeclaredRoute[] {
  return routeTables.get(app) ?? [];
}

/** Headers that make a call of the process to its own API (fastify's inject) a staff call. */
export function inProcessStaffHeaders(app: FastifyInstance): Record<string, string> {
  const token = inProcessTokens.get(app);
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
