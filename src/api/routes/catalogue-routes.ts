import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';
import {
  createMagasinBody,
  createProduitBody,
  idParam,
  magasinSchema,
  messageSchema,
  produitSchema,
  setStockBody,
  stockLevelSchema,
} from '../schemas.js';

export const catalogueRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { catalogue }) => {
  app.post(
    '/api/magasins',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['catalogue'],
        body: createMagasinBody,
        response: { 201: magasinSchema, 400: messageSchema, 409: messageSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await catalogue.createMagasin(request.body)),
  );

  app.get(
    '/api/magasins',
    {
      config: { access: 'client' },
      schema: { tags: ['catalogue'], response: { 200: z.array(magasinSchema) } },
    },
    () => catalogue.listMagasins(),
  );

  app.get(
    '/api/magasins/:id',
    {
      config: { access: 'client' },
      schema: {
        tags: ['catalogue'],
        params: z.object({ id: idParam }),
        response: { 200: magasinSchema, 404: messageSchema },
      },
    },
    (request) => catalogue.getMagasin(request.params.id),
  );

  app.post(
    '/api/produits',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['catalogue'],
        body: createProduitBody,
        response: { 201: produitSchema, 400: messageSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await catalogue.createProduit(request.body)),
  );

  app.get(
    '/api/produits',
    {
      config: { access: 'client' },
      schema: { tags: ['catalogue'], response: { 200: z.array(produitSchema) } },
    },
    () => catalogue.listProduits(),
  );

  app.get(
    '/api/produits/:id',
    {
      config: { access: 'client' },
      schema: {
        tags: ['catalogue'],
        params: z.object({ id: idParam }),
        response: { 200: produitSchema, 404: messageSchema },
      },
    },
    (request) => catalogue.getProduit(request.params.id),
  );

  app.put(
    '/api/stock/:magasinId/:produitId',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['stock'],
        params: z.object({ magasinId: idParam, produitId: idParam }),
        body: setStockBody,
        response: { 200: stockLevelSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    (request) =>
      catalogue.setStock(request.params.magasinId, request.params.produitId, request.body.quantite),
  );

  app.get(
    '/api/stock/magasin/:magasinId',
    {
      config: { access: 'client' },
      schema: {
        tags: ['stock'],
        params: z.object({ magasinId: idParam }),
        response: { 200: z.array(stockLevelSchema.omit({ magasin_id: true })), 404: messageSchema },
      },
    },
    (request) => catalogue.stockOfMagasin(request.params.magasinId),
  );
};
