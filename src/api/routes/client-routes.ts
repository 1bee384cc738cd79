import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';
import { clientSchema, createClientBody, idParam, messageSchema } from '../schemas.js';

export const clientRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { clients }) => {
  app.post(
    '/api/clients',
    {
      schema: {
        tags: ['clients'],
        body: createClientBody,
        response: { 201: clientSchema, 400: messageSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await clients.create(request.body)),
  );

  app.get(
    '/api/clients/:id',
    {
      schema: {
        tags: ['clients'],
        params: z.object({ id: idParam }),
        response: { 200: clientSchema, 404: messageSchema },
      },
    },
    (request) => clients.get(request.params.id),
  );
};
