import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';

const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  bus: z.enum(['redis', 'postgres']),
  postgres: z.string(),
  redis: z.string(),
});

const REDIS_NOT_USED = 'not used: the PostgreSQL bus carries the events';

async function probe(check: () => Promise<void>): Promise<string> {
  try {
    await check();
    return 'ok';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export const opsRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { metrics, readiness }) => {
  app.get(
    '/health',
    {
      config: { access: 'public' },
      schema: { tags: ['ops'], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    () => ({
      status: 'ok' as const,
    }),
  );

  app.get(
    '/ready',
    {
      config: { access: 'public' },
      schema: { tags: ['ops'], response: { 200: readinessSchema, 503: readinessSchema } },
    },
    async (_request, reply) => {
      const { bus } = readiness;
      const [postgres, redis] = await Promise.all([
        probe(readiness.postgres),
        bus.kind === 'redis' ? probe(() => bus.probe()) : REDIS_NOT_USED,
      ]);
      const ready = postgres === 'ok' && (redis === 'ok' || bus.kind !== 'redis');
      return reply
        .status(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', bus: bus.kind, postgres, redis });
    },
  );

  // Staff, or Prometheus with CHOREO_METRICS_TOKEN.
  app.get(
    '/metrics',
    { config: { access: 'metrics' }, schema: { tags: ['ops'], hide: true } },
    async (_request, reply) => {
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
};
