import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDependencies } from '../api-dependencies.js';
import { limitQuery, messageSchema } from '../schemas.js';

const deadLetterSchema = z.object({
  id: z.string(),
  stream: z.string(),
  entry_id: z.string(),
  group: z.string(),
  reason: z.string(),
  deliveries: z.number().int(),
  failed_at: z.string(),
  fields: z.record(z.string(), z.string()),
});

/** A dead letter's id: a stream entry id on Redis Streams (1712345678901-0), a number on PostgreSQL. */
const deadLetterId = z
  .string()
  .regex(/^\d{1,19}(-\d{1,19})?$/, 'is not a dead letter id (like 1712345678901-0, or 42)');

export const deadLetterRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { deadLetters }) => {
  app.get(
    '/api/dead-letters',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['operations'],
        description: 'Events that kept failing: the reason, the original entry and its delivery count.',
        querystring: z.object({ limit: limitQuery(1_000) }),
        response: { 200: z.array(deadLetterSchema), 400: messageSchema },
      },
    },
    (request) => deadLetters.list(request.query.limit),
  );

  app.post(
    '/api/dead-letters/:id/rejouer',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['operations'],
        description:
          'Re-drives a dead letter (after a fix): the event is delivered again to its consumer group(s).',
        params: z.object({ id: deadLetterId }),
        response: {
          202: z.object({ id: z.string(), stream: z.string(), new_entry_id: z.string() }),
          400: messageSchema,
          404: messageSchema,
        },
      },
    },
    async (request, reply) => reply.status(202).send(await deadLetters.redrive(request.params.id)),
  );
};
