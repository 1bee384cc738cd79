import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ValidationError } from '../../domain/errors.js';
import { fromCents, toCents } from '../../domain/money.js';
import type { ApiDependencies } from '../api-dependencies.js';
import { actsFor, assertActsFor, callerOf } from '../auth/caller.js';
import { type RateLimit, RateLimiter } from '../rate-limiter.js';
import {
  addArticleBody,
  checkoutBody,
  checkoutReply,
  idParam,
  MONEY_MAX,
  messageSchema,
  POSTGRES_INTEGER_MAX,
  panierSchema,
} from '../schemas.js';

const clientParams = z.object({ clientId: idParam });

/** The client a path names, as its schema will read it (`01` is 1); none when the schema will refuse it. */
function clientOfPath(params: unknown): number | undefined {
  const raw = (params as { clientId?: unknown }).clientId;
  const parsed = idParam.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

export interface PanierRouteOptions extends ApiDependencies {
  /** Checkouts per client, in this process's memory; `perSecond` 0: no limit. */
  checkoutRateLimit: RateLimit;
}

export const panierRoutes: FastifyPluginAsyncZod<PanierRouteOptions> = async (
  app,
  { paniers, checkouts, catalogue, checkoutRateLimit },
) => {
  const limiter = checkoutRateLimit.perSecond > 0 ? new RateLimiter(checkoutRateLimit) : null;
  const { perSecond, burst } = checkoutRateLimit;

  /**
   * Before the body is read: a client past its rate answers 429 with `Retry-After` (whole seconds), and
   * its refused attempts take nothing from its allowance. Attempts that fail later (an empty cart, an
   * unknown client) count too: they cost the database all the same.
   */
  async function limitCheckouts(request: FastifyRequest, reply: FastifyReply) {
    const clientId = limiter === null ? undefined : clientOfPath(request.params);
    if (limiter === null || clientId === undefined) return;
    // Another client's checkout answers 404 and takes nothing from that client's allowance.
    if (!actsFor(callerOf(request), clientId)) return;
    const decision = limiter.take(clientId);
    if (decision.allowed) return;
    return reply
      .status(429)
      .header('retry-after', String(decision.retryAfterSeconds))
      .send({
        message: `too many checkouts for client ${clientId}: at most ${perSecond} per second (${burst} at once); retry in ${decision.retryAfterSeconds} s`,
      });
  }

  /**
   * A cart adds up: its line's quantity is a PostgreSQL integer, its total an amount (schemas.ts). Refused
   * before the cart is written, naming the quantity that would take it past either bound. (Two additions to
   * one cart at the same instant could still pass it together.)
   */
  async function refuseACartBeyondItsBounds(clientId: number, produitId: number, quantite: number) {
    const panier = await paniers.get(clientId);
    const { prix } = await catalogue.getProduit(produitId);
    const inCart = panier.articles.find((article) => article.produit_id === produitId)?.quantite ?? 0;
    if (inCart + quantite > POSTGRES_INTEGER_MAX) {
      throw new ValidationError(
        'body.quantite',
        `the cart would hold ${inCart + quantite} of produit ${produitId}, more than ${POSTGRES_INTEGER_MAX}`,
      );
    }
    const totalCents = toCents(panier.total) + toCents(prix) * quantite;
    if (totalCents > toCents(MONEY_MAX)) {
      throw new ValidationError(
        'body.quantite',
        `the cart's total would be ${fromCents(totalCents)}, more than ${MONEY_MAX}`,
      );
    }
  }

  app.get(
    '/api/panier/:clientId',
    {
      config: { access: 'client' },
      schema: { tags: ['panier'], params: clientParams, response: { 200: panierSchema, 404: messageSchema } },
    },
    (request) => {
      assertActsFor(callerOf(request), request.params.clientId);
      return paniers.get(request.params.clientId);
    },
  );

  app.post(
    '/api/panier/:clientId/articles',
    {
      config: { access: 'client' },
      schema: {
        tags: ['panier'],
        params: clientParams,
        body: addArticleBody,
        response: { 200: panierSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { clientId } = request.params;
      assertActsFor(callerOf(request), clientId);
      const { produit_id, quantite } = request.body;
      await refuseACartBeyondItsBounds(clientId, produit_id, quantite);
      return paniers.addArticle(clientId, produit_id, quantite);
    },
  );

  app.delete(
    '/api/panier/:clientId/articles/:produitId',
    {
      config: { access: 'client' },
      schema: {
        tags: ['panier'],
        params: z.object({ clientId: idParam, produitId: idParam }),
        response: { 200: panierSchema, 404: messageSchema },
      },
    },
    (request) => {
      assertActsFor(callerOf(request), request.params.clientId);
      return paniers.removeArticle(request.params.clientId, request.params.produitId);
    },
  );

  app.post(
    '/api/panier/:clientId/checkout',
    {
      config: { access: 'client' },
      schema: {
        tags: ['panier'],
        description:
          'Creates a commande from the cart (CommandeCreee) and empties the cart. The same Idempotency-Key returns the same commande. Rate-limited per client (CHECKOUT_RATE_LIMIT): 429 with Retry-After.',
        params: clientParams,
        headers: z.object({ 'idempotency-key': z.string().min(1).max(200).optional() }),
        body: checkoutBody,
        response: {
          202: checkoutReply,
          400: messageSchema,
          404: messageSchema,
          409: messageSchema,
          429: messageSchema,
        },
      },
      onRequest: limitCheckouts,
    },
    async (request, reply) => {
      assertActsFor(callerOf(request), request.params.clientId);
      const result = await checkouts.checkout(
        request.params.clientId,
        request.body.magasin_id,
        request.headers['idempotency-key'],
      );
      return reply.status(202).send({ commande_id: result.commande_id, statut: result.statut });
    },
  );
};
