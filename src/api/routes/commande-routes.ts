import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { COMMANDE_STATUTS } from '../../machines/commande-replay.js';
import { renderMachineSvg } from '../../machines/diagram/render-machine-svg.js';
import { commandeDiagram } from '../../machines/registry.js';
import type { ApiDependencies } from '../api-dependencies.js';
import { assertActsFor, type Caller, callerOf, clientScope } from '../auth/caller.js';
import { commandeSchema, idParam, limitQuery, messageSchema, textId, venteSchema } from '../schemas.js';

export const commandeRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { commandes, ventes }) => {
  /** The commande, if the caller may see it; another client's answers as an unknown id does. */
  const commandeFor = async (caller: Caller, commandeId: string) => {
    const commande = await commandes.get(commandeId);
    assertActsFor(caller, commande.client_id, `commande ${commandeId} not found`);
    return commande;
  };

  app.get(
    '/api/commandes/:id',
    {
      config: { access: 'client' },
      schema: {
        tags: ['commandes'],
        description:
          "The commande as the read model knows it, or, in the milliseconds before the read model has it, as its events tell it. A client sees its own only: another's answers 404.",
        params: z.object({ id: textId }),
        response: { 200: commandeSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { created_at: _, ...commande } = await commandeFor(callerOf(request), request.params.id);
      return commande;
    },
  );

  app.get(
    '/api/commandes/:id/diagramme',
    {
      config: { access: 'client' },
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
      const { statut } = await commandeFor(callerOf(request), request.params.id);
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
      config: { access: 'client' },
      schema: {
        tags: ['commandes'],
        description:
          "Commandes, newest first. A client sees its own only: without client_id, its own; another client's id answers 404.",
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
      const clientId = clientScope(callerOf(request), client_id);
      const found = await commandes.list({ clientId, statut, limit });
      return found.map(({ created_at: _, ...commande }) => commande);
    },
  );

  app.get(
    '/api/ventes',
    { config: { access: 'staff' }, schema: { tags: ['ventes'], response: { 200: z.array(venteSchema) } } },
    () => ventes.list(),
  );
};
