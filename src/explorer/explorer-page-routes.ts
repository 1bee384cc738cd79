import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { messageSchema } from '../api/schemas.js';

/** The page's files: plain ES modules and CSS, served as they are (no build step). */
const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const assetName = z
  .string()
  .regex(/^[a-z0-9-]+\.(js|css)$/, 'is not an explorer asset (like explorer.js)')
  .describe('A file of the explorer page');

/**
 * The explorer's page loads its own scripts (ES modules), styles and data from this origin only, and is
 * never framed. (Styles the scripts set through the DOM, `element.style.x = …`, are not inline styles.)
 * One exception, images from `data:`: the page's icon is the empty `data:,`, so that the browser asks for
 * no /favicon.ico; an image runs nothing.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "base-uri 'self'",
  "form-action 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The headers of every answer of the explorer's pages and their files (the API's answers have nosniff). */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

async function send(fileName: string) {
  return {
    body: await readFile(`${PUBLIC_DIR}${fileName}`, 'utf8'),
    type: CONTENT_TYPES[extname(fileName)] ?? 'application/octet-stream',
  };
}

/** GET / and /explorer: the explorer's page; /explorer/assets/*: its scripts and styles. */
export const explorerPageRoutes: FastifyPluginAsyncZod = async (app) => {
  // Encapsulated: these routes only, whatever they answer (a 404 for an unknown asset too).
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });

  app.get('/', { config: { access: 'public' }, schema: { hide: true } }, (_request, reply) =>
    reply.redirect('/explorer'),
  );

  app.get(
    '/explorer',
    {
      config: { access: 'public' },
      schema: {
        tags: ['explorer'],
        description:
          'The explorer: the order machine alive, the orders, dead letters, actors and a demo load.',
        response: { 200: { content: { 'text/html': { schema: z.string() } } } },
      },
    },
    async (_request, reply) => {
      const page = await send('index.html');
      return reply.type(page.type).header('cache-control', 'no-cache').send(page.body);
    },
  );

  app.get(
    '/explorer/assets/:file',
    {
      config: { access: 'public' },
      schema: {
        tags: ['explorer'],
        params: z.object({ file: assetName }),
        response: { 200: z.string(), 400: messageSchema, 404: messageSchema },
      },
    },
    async (request, reply) => {
      try {
        const asset = await send(request.params.file);
        return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
      } catch {
        return reply.status(404).send({ message: `no explorer asset ${request.params.file}` });
      }
    },
  );
};
