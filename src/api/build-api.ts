import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ApiDependencies } from './api-dependencies.js';
import { registerErrorHandler } from './error-handler.js';
import { auditRoutes } from './routes/audit-routes.js';
import { catalogueRoutes } from './routes/catalogue-routes.js';
import { clientRoutes } from './routes/client-routes.js';
import { commandeRoutes } from './routes/commande-routes.js';
import { deadLetterRoutes } from './routes/dead-letter-routes.js';
import { eventRoutes } from './routes/event-routes.js';
import { opsRoutes } from './routes/ops-routes.js';
import { panierRoutes } from './routes/panier-routes.js';

/** Builds the HTTP app without listening, so that tests can use it as it is. */
export async function buildApi(
  dependencies: ApiDependencies,
  logger: FastifyBaseLogger,
): Promise<FastifyInstance> {
  // Per-request lines would drown the saga's own logs; request timings go to /metrics instead.
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

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
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(catalogueRoutes, dependencies);
  await app.register(clientRoutes, dependencies);
  await app.register(panierRoutes, dependencies);
  await app.register(commandeRoutes, dependencies);
  await app.register(eventRoutes, dependencies);
  await app.register(deadLetterRoutes, dependencies);
  await app.register(auditRoutes, dependencies);
  await app.register(opsRoutes, dependencies);
  return app;
}
