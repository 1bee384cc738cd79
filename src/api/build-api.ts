import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_CHECKOUT_RATE_BURST } from '../config.js';
import type { ApiDependencies } from './api-dependencies.js';
import { registerAccessControl } from './auth/access-control.js';
import { registerErrorHandler } from './error-handler.js';
import { auditRoutes } from './routes/audit-routes.js';
import { catalogueRoutes } from './routes/catalogue-routes.js';
import { clientRoutes } from './routes/client-routes.js';
import { commandeRoutes } from './routes/commande-routes.js';
import { deadLetterRoutes } from './routes/dead-letter-routes.js';
import { eventRoutes } from './routes/event-routes.js';
import { opsRoutes } from './routes/ops-routes.js';
import { panierRoutes } from './routes/panier-routes.js';

/** What limits the API applies to its callers (config.ts gives the defaults). */
export interface ApiLimits {
  /** Checkouts per second per client, in this process; 0 or unset: no limit (config.ts sets the default). */
  checkoutRateLimit?: number;
  checkoutRateBurst?: number;
  bodyLimitBytes?: number;
  /** Origins answered with CORS headers; none: no CORS header on any answer. */
  corsOrigins?: readonly string[];
}

/** The methods and request headers a browser of an allowed origin may use (the preflight's answer). */
const CORS_METHODS = 'GET, POST, PUT, DELETE';
const CORS_REQUEST_HEADERS = 'authorization, content-type, idempotency-key, last-event-id';
/** What a script of an allowed origin may read of an answer beyond the simple headers. */
const CORS_EXPOSED_HEADERS = 'retry-after';
const CORS_MAX_AGE_SECONDS = 600;
/** Swagger UI's routes, which its plugin registers: public, like the OpenAPI document they show. */
const DOCS_PREFIX = '/docs';

/**
 * CORS only for the configured origins: an allowed Origin is echoed (with `Vary: Origin`), any other gets
 * no CORS header, so its browser refuses to hand the answer to the page. Preflights (OPTIONS) answer 204.
 */
function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  const allowed = new Set(origins);
  const allowedOrigin = (request: FastifyRequest) => {
    const origin = request.headers.origin;
    return origin !== undefined && allowed.has(origin) ? origin : undefined;
  };
  app.addHook('onSend', async (request, reply: FastifyReply, payload) => {
    const vary = reply.getHeader('vary');
    reply.header('vary', vary === undefined ? 'Origin' : `${String(vary)}, Origin`);
    const origin = allowedOrigin(request);
    if (origin !== undefined) {
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
    }
    return payload;
  });
  app.options('*', { schema: { hide: true }, config: { access: 'public' } }, (request, reply) => {
    if (allowedOrigin(request) !== undefined) {
      reply.header('access-control-allow-methods', CORS_METHODS);
      reply.header('access-control-allow-headers', CORS_REQUEST_HEADERS);
      reply.header('access-control-max-age', String(CORS_MAX_AGE_SECONDS));
    }
    return reply.status(204).send();
  });
}

/** Builds the HTTP app without listening, so that tests can use it as it is. */
export async function buildApi(
  dependencies: ApiDependencies,
  logger: FastifyBaseLogger,
  limits: ApiLimits = {},
): Promise<FastifyInstance> {
  const bodyLimitBytes = limits.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  // Per-request lines would drown the saga's own logs; request timings go to /metrics instead.
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: bodyLimitBytes,
  });
  // First, so that every route registered after it must declare its access (deny by default).
  registerAccessControl(app, dependencies.authenticator, {
    prefixes: [{ prefix: DOCS_PREFIX, access: 'public' }],
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app, { bodyLimitBytes });

  // Every answer, JSON or not: the browser takes its content-type as it is, never guesses another.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });
  if (limits.corsOrigins && limits.corsOrigins.length > 0) registerCors(app, limits.corsOrigins);

  app.addHook('onResponse', async (request, reply) => {
    dependencies.metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime,
    );
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'choreo',
        description: 'Orders of a multi-store retailer processed as choreographed sagas.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'The staff token (CHOREO_ADMIN_TOKEN, or the admin-token file in the data folder), or a client token from POST /api/clients',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    // The document's default is the bearer token; a public route says it needs none, so /docs does not show a padlock on /health.
    transform: (document) => {
      const transformed = jsonSchemaTransform(document);
      return document.route.config?.access === 'public'
        ? { ...transformed, schema: { ...transformed.schema, security: [] } }
        : transformed;
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX });

  await app.register(catalogueRoutes, dependencies);
  await app.register(clientRoutes, dependencies);
  await app.register(panierRoutes, {
    ...dependencies,
    checkoutRateLimit: {
      perSecond: limits.checkoutRateLimit ?? 0,
      burst: limits.checkoutRateBurst ?? DEFAULT_CHECKOUT_RATE_BURST,
    },
  });
  await app.register(commandeRoutes, dependencies);
  await app.register(eventRoutes, dependencies);
  await app.register(deadLetterRoutes, dependencies);
  await app.register(auditRoutes, dependencies);
  await app.register(opsRoutes, dependencies);
  return app;
}
