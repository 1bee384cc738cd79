import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';
import {
  addArticleBody,
  checkoutBody,
  checkoutReply,
  idParam,
  messageSchema,
  panierSchema,
} from '../schemas.js';

const clientParams = z.object({ clientId: idParam });

export const panierRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { paniers, checkouts }) => {
  app.get(
    '/api/panier/:clientId',
    {
      schema: { tags: ['panier'], params: clientParams, response: { 200: panierSchema, 404: messageSchema } },
    },
    (request) => paniers.get(request.params.clientId),
  );

  app.post(
    '/api/panier/:clientId/articles',
    {
      schema: {
        tags: ['panier'],
        params: clientParams,
        body: addArticleBody,
        response: { 200: panierSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    (request) => paniers.addArticle(request.params.clientId, request.body.produit_id, request.body.quantite),
  );

  app.delete(
    '/api/panier/:clientId/articles/:produitId',
    {
      schema: {
        tags: ['panier'],
        params: z.object({ clientId: idParam, produitId: idParam }),
        response: { 200: panierSchema, 404: messageSchema },
      },
    },
    (request) => paniers.removeArticle(request.params.clientId, request.params.produitId),
  );

  app.post(
    '/api/panier/:clientId/checkout',
    {
      schema: {
        tags: ['panier'],
        description:
          'Creates a commande from the cart (CommandeCreee) and empties the cart. The same Idempotency-Key returns the same commande.',
        params: clientParams,
        headers: z.object({ 'idempotency-key': z.string().min(1).max(200).optional() }),
        body: checkoutBody,
        response: { 202: checkoutReply, 400: messageSchema, 404: messageSchema, 409: messageSchema },
      },
    },
    async (request, reply) => {
      const result = await checkouts.checkout(
        request.params.clientId,
        request.body.magasin_id,
        request.headers['idempotency-key'],
      );
      return reply.status(202).send({ commande_id: result.commande_id, statut: result.statut });
    },
  );
};
