import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { readAll } from '../../persistence/event-store.js';
import type { ApiDependencies } from '../api-dependencies.js';
import { assertActsFor, callerOf } from '../auth/caller.js';
import { envelopeSchema, limitQuery, messageSchema, projectionSchema, textId } from '../schemas.js';

/** A position of the event store (a bigint), as far as a JSON number counts exactly. */
const afterPosition = z.coerce
  .number()
  .int()
  .min(0, `must be an event position from 0 to ${Number.MAX_SAFE_INTEGER}`)
  .max(Number.MAX_SAFE_INTEGER, `must be an event position from 0 to ${Number.MAX_SAFE_INTEGER}`)
  .default(0);

/** Read-only access to the event store. There is deliberately no route that appends events. */
export const eventRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { pool, commandes }) => {
  app.get(
    '/events/',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['events'],
        querystring: z.object({
          aggregate_id: textId.optional(),
          after: afterPosition,
          limit: limitQuery(1_000),
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
      config: { access: 'client' },
      schema: {
        tags: ['events'],
        description: "The seed report's projection: the commande's state rebuilt from its events.",
        params: z.object({ aggregateId: textId }),
        response: { 200: projectionSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { aggregateId } = request.params;
      const { client_id, produits, total, statut } = await commandes.get(aggregateId);
      assertActsFor(callerOf(request), client_id, `commande ${aggregateId} not found`);
      return { client_id, produits, total, statut };
    },
  );
};
