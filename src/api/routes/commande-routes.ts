import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { COMMANDE_STATUTS } from '../../machines/commande-replay.js';
import { renderMachineSvg } from '../../machines/diagram/render-machine-svg.js';
import { commandeDiagram } from '../../machines/registry.js';
import type { ApiDependencies } from '../api-dependencies.js';
import { commandeSchema, idParam, limitQuery, messageSchema, textId, venteSchema } from '../schemas.js';

export const commandeRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { commandes, ventes }) => {
  app.get(
    '/api/commandes/:id',
    {
      schema: {
        tags: ['commandes'],
        description:
          'The commande as the read model knows it (it follows the event store within milliseconds).',
        params: z.object({ id: textId }),
        response: { 200: commandeSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { created_at: _, ...commande } = await commandes.get(request.params.id);
      return commande;
    },
  );

  app.get(
    '/api/commandes/:id/diagramme',
    {
      schema: {
        tags: ['commandes'],
        description:
          "The order machine as an SVG diagram, the commande's current state (from the read model) highlighted.",
        params: z.object({ id: textId }),
        response: {
          200: { content: { 'image/svg+xml': { schema: z.string() } } },
          400: messageSchema,
          404: messageSchema,
        },
      },
    },
    async (request, reply) => {
      const { statut } = await commandes.get(request.params.id);
      const svg = await renderMachineSvg(commandeDiagram.machine, {
        initialEvent: commandeDiagram.initialEvent,
        highlightState: statut,
      });
      // The state moves on as the saga advances: a cached picture would tell a stale story.
      return reply.type('image/svg+xml').header('cache-control', 'no-store').send(svg);
    },
  );

  app.get(
    '/api/commandes',
    {
      schema: {
        tags: ['commandes'],
        querystring: z.object({
          client_id: idParam.optional(),
          statut: z.enum(COMMANDE_STATUTS).optional(),
          limit: limitQuery(1_000),
        }),
        response: { 200: z.array(commandeSchema), 400: messageSchema },
      },
    },
    async (request) => {
      const { client_id, statut, limit } = request.query;
      const found = await commandes.list({ clientId: client_id, statut, limit });
      return found.map(({ created_at: _, ...commande }) => commande);
    },
  );

  app.get('/api/ventes', { schema: { tags: ['ventes'], response: { 200: z.array(venteSchema) } } }, () =>
    ventes.list(),
  );
};
