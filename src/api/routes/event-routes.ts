import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { readAll } from '../../persistence/event-store.js';
import type { ApiDependencies } from '../api-dependencies.js';
import { envelopeSchema, messageSchema, projectionSchema } from '../schemas.js';

/** Read-only access to the event store. There is deliberately no route that appends events. */
export const eventRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { pool, commandes }) => {
  app.get(
    '/events/',
    {
      schema: {
        tags: ['events'],
        querystring: z.object({
          aggregate_id: z.string().min(1).optional(),
          after: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(1_000).default(100),
        }),
        response: { 200: z.array(envelopeSchema), 400: messageSchema },
      },
    },
    (request) =>
      readAll(pool, {
        after: request.query.after,
        limit: request.query.limit,
        aggregateId: request.query.aggregate_id,
      }),
  );

  app.get(
    '/events/projections/:aggregateId',
    {
      schema: {
        tags: ['events'],
        description: "The seed report's projection: the commande's state rebuilt from its events.",
        params: z.object({ aggregateId: z.string().min(1) }),
        response: { 200: projectionSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { client_id, produits, total, statut } = await commandes.get(request.params.aggregateId);
      return { client_id, produits, total, statut };
    },
  );
};
