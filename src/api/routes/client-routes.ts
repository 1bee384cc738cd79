import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';
import { assertActsFor, callerOf } from '../auth/caller.js';
import { issueClientToken } from '../auth/client-tokens.js';
import { clientSchema, createClientBody, idParam, messageSchema } from '../schemas.js';

const clientTokenSchema = z.object({
  client_id: z.number().int(),
  token: z.string().describe("The client's bearer token: shown this once, never stored in clear"),
});

export const clientRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { clients, pool }) => {
  app.post(
    '/api/clients',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['clients'],
        description:
          'Creates a client with its opening balance, and answers its bearer token (`token`): the only time it is shown. The client sends it as `Authorization: Bearer <token>` to work on its own cart, checkouts, commandes and balance.',
        body: createClientBody,
        response: {
          201: clientSchema.extend({ token: clientTokenSchema.shape.token }),
          400: messageSchema,
        },
      },
    },
    async (request, reply) => reply.status(201).send(await clients.createWithToken(request.body)),
  );

  app.get(
    '/api/clients/:id',
    {
      config: { access: 'client' },
      schema: {
        tags: ['clients'],
        description: 'A client and its balance (a client sees itself only: another id answers 404).',
        params: z.object({ id: idParam }),
        response: { 200: clientSchema, 404: messageSchema },
      },
    },
    (request) => {
      assertActsFor(callerOf(request), request.params.id);
      return clients.get(request.params.id);
    },
  );

  app.post(
    '/api/clients/:id/token',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['clients'],
        description:
          'Issues a new bearer token for the client and answers it (shown this once); the previous one stops working at once, in every process.',
        params: z.object({ id: idParam }),
        response: { 201: clientTokenSchema, 404: messageSchema },
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send({ client_id: request.params.id, token: await issueClientToken(pool, request.params.id) }),
  );
};
