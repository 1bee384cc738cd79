import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { assertActsFor, type Caller, callerOf, clientScope, sameCaller } from '../api/auth/caller.js';
import { idParam, limitQuery, messageSchema, textId, trimmedText } from '../api/schemas.js';
import { ACTOR_NAMES } from '../config.js';
import { NotFoundError } from '../domain/errors.js';
import { COMMANDE_STATUTS } from '../machines/commande-replay.js';
import type { Pool } from '../persistence/database.js';
import { commandeHistory } from './commande-history.js';
import { listCommandes } from './commande-list.js';
import type { DemoLoad } from './demo-load.js';
import type { ChangeFilter, ChangeScope, LiveFeed } from './live-feed.js';
import { machinePicture } from './machine-picture.js';
import { type ActorState, type ProcessRegistry, processSchema } from './process-registry.js';
import { SseConnection } from './sse-connection.js';

/** What pauses and resumes the actors of the process that receives the request (Choreo). */
export interface ActorControl {
  actorStates(): ActorState[];
  pauseActor(actor: (typeof ACTOR_NAMES)[number]): Promise<boolean>;
  resumeActor(actor: (typeof ACTOR_NAMES)[number]): boolean;
}

export interface ExplorerApiOptions {
  pool: Pool;
  feed: LiveFeed;
  processes: ProcessRegistry;
  actors: ActorControl;
  demo: DemoLoad;
}

const liveQuery = z.object({
  changes: z
    .enum(['all', 'none'])
    .default('all')
    .describe("'all': every commande's events (a client's: its own; capped per message); 'none': none"),
  commande: textId.optional().describe("Only this commande's events"),
  overview: z
    .enum(['0', '1'])
    .optional()
    .describe("1: an overview message every second (staff only; staff's default, a client's is 0)"),
});

const sessionSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('staff') }),
  z.object({ role: z.literal('client'), client_id: z.number().int() }),
]);

/**
 * A token is checked when its stream opens; a stream stays open for hours. Every this often, the token of
 * each open stream is checked again, and a stream whose token was replaced (a client's, POST
 * /api/clients/:id/token, or the generated staff token, `npm run staff-token -- --new`) is ended: the page,
 * reconnecting, is refused and asks for a token.
 */
const TOKEN_RECHECK_MS = 5_000;

/** Whose commandes a caller of the explorer's API may see: staff every client's, a client its own. */
function scopeOf(caller: Caller): ChangeScope {
  if (caller.role === 'staff') return { kind: 'every-client' };
  if (caller.role === 'client') return { kind: 'client', clientId: caller.clientId };
  // The access control lets only staff and clients reach the explorer's `client` routes.
  throw new Error(`the explorer has no view for the ${caller.role} role`);
}

const actorStateSchema = z.object({
  process_id: z.string(),
  actor: z.enum(ACTOR_NAMES),
  group: z.string().nullable(),
  paused: z.boolean(),
});

const demoProgressSchema = z.object({
  state: z.enum(['idle', 'seeding', 'running', 'done', 'failed']),
  rate: z.number(),
  seconds: z.number(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  seeded: z.boolean(),
  planned: z.number().int(),
  sent: z.object({
    succes: z.number().int(),
    stock_insuffisant: z.number().int(),
    solde_insuffisant: z.number().int(),
  }),
  skipped: z.number().int(),
  errors: z.number().int(),
  last_error: z.string().nullable(),
  magasin_id: z.number().int().nullable(),
});

const historyStepSchema = z.object({
  position: z.number().int(),
  version: z.number().int(),
  event_id: z.string(),
  event_type: z.string(),
  source: z.string(),
  timestamp: z.string(),
  since_previous_ms: z.number().nullable(),
  causation_id: z.string().nullable(),
  caused_by_version: z.number().int().nullable(),
  data: z.record(z.string(), z.unknown()),
  statut: z.string().nullable(),
  accepted: z.boolean(),
});

/** The explorer's API: its live feed, what its views list, and the controls it offers. */
export const explorerApiRoutes: FastifyPluginAsyncZod<ExplorerApiOptions> = async (app, options) => {
  const { pool, feed, processes, actors, demo } = options;

  app.get(
    '/api/explorer/session',
    {
      config: { access: 'client' },
      schema: {
        tags: ['explorer'],
        description:
          'Who the bearer token is: staff, or a client (the explorer then shows that client its own commandes only). 401 for no or a bad token.',
        response: { 200: sessionSchema },
      },
    },
    (request) => {
      const scope = scopeOf(callerOf(request));
      return scope.kind === 'client'
        ? { role: 'client' as const, client_id: scope.clientId }
        : { role: 'staff' as const };
    },
  );

  app.get(
    '/api/explorer/live',
    {
      config: { access: 'client' },
      schema: {
        tags: ['explorer'],
        description:
          "Server-sent events from the event store: `changes` (the events of commandes as they commit, id = position; a client is told of its own commandes only), `overview` every second (staff only: it counts every client's), `reset` when the page must reload what it shows. Send Last-Event-ID (the last position seen) to resume.",
        querystring: liveQuery,
        headers: z.object({
          // A position the stream sent (a bigint, read back exactly as a JSON number: at most 15 digits).
          'last-event-id': z
            .string()
            .regex(/^\d{1,15}$/, 'is not a position of the event stream')
            .optional(),
        }),
      },
    },
    async (request, reply) => {
      const { changes, commande } = request.query;
      const caller = callerOf(request);
      const scope = scopeOf(caller);
      const overview = request.query.overview ?? (scope.kind === 'every-client' ? '1' : '0');
      if (overview === '1' && scope.kind === 'client') {
        return reply
          .status(403)
          .send({ message: "the overview is for staff: it counts every client's commandes" });
      }
      const filter: ChangeFilter =
        commande !== undefined ? { kind: 'commande', commandeId: commande } : { kind: changes };
      const lastEventId = request.headers['last-event-id'];
      reply.hijack();
      let unsubscribe: (() => void) | null = null;
      let gone = false;
      let recheck: NodeJS.Timeout | undefined;
      const connection = new SseConnection(reply.raw, () => {
        gone = true;
        clearInterval(recheck);
        unsubscribe?.();
      });
      recheck = setInterval(() => {
        request
          .currentCaller()
          .then((current) => {
            if (!sameCaller(current, caller)) connection.close();
          })
          // The feed says when the database is away; the token is checked again next time.
          .catch(() => {});
      }, TOKEN_RECHECK_MS);
      recheck.unref();
      try {
        const stop = await feed.subscribe(connection, filter, {
          scope,
          overview: overview === '1',
          lastEventId: lastEventId === undefined ? null : Number(lastEventId),
        });
        if (gone) stop();
        else unsubscribe = stop;
      } catch (error) {
        request.log.warn({ err: error }, 'explorer live feed unavailable');
        connection.close();
      }
    },
  );

  app.get(
    '/api/explorer/machine',
    {
      config: { access: 'client' },
      schema: {
        tags: ['explorer'],
        description:
          'The order machine drawn from its definition (SVG), its states, transitions and colours.',
        response: {
          200: z.object({
            svg: z.string(),
            initial: z.string(),
            states: z.array(z.object({ key: z.string(), kind: z.string(), final: z.boolean() })),
            transitions: z.array(z.object({ source: z.string(), target: z.string(), label: z.string() })),
            kinds: z.record(z.string(), z.object({ fill: z.string(), stroke: z.string(), text: z.string() })),
          }),
        },
      },
    },
    () => machinePicture(),
  );

  app.get(
    '/api/explorer/commandes',
    {
      config: { access: 'client' },
      schema: {
        tags: ['explorer'],
        description:
          "Commandes newest first, from the read model, filtered by state, client, store or id. A client's: its own only (another client's id answers 404).",
        querystring: z.object({
          statut: z.enum(COMMANDE_STATUTS).optional(),
          client_id: idParam.optional(),
          magasin_id: idParam.optional(),
          q: trimmedText.optional().describe('Part of a commande id'),
          limit: limitQuery(500),
        }),
        response: {
          200: z.array(
            z.object({
              commande_id: z.string(),
              client_id: z.number().int(),
              magasin_id: z.number().int(),
              total: z.number(),
              statut: z.string(),
              raison: z.string().nullable(),
              created_at: z.string(),
              updated_at: z.string(),
            }),
          ),
          400: messageSchema,
          404: messageSchema,
        },
      },
    },
    (request) => {
      const { statut, client_id, magasin_id, q, limit } = request.query;
      const clientId = clientScope(callerOf(request), client_id);
      return listCommandes(pool, { statut, clientId, magasinId: magasin_id, search: q, limit });
    },
  );

  app.get(
    '/api/explorer/commandes/:id/historique',
    {
      config: { access: 'client' },
      schema: {
        tags: ['explorer'],
        description:
          "A commande's events in order, each with the state replaying up to it gives (the saga's pure fold). Another client's commande answers 404, as an unknown one does.",
        params: z.object({ id: textId }),
        response: { 200: z.array(historyStepSchema), 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      const { id } = request.params;
      const caller = callerOf(request);
      const history = await commandeHistory(pool, id);
      const notFound = `commande ${id} not found`;
      if (history.clientId === null && caller.role !== 'staff') throw new NotFoundError(notFound);
      if (history.clientId !== null) assertActsFor(caller, history.clientId, notFound);
      return history.steps;
    },
  );

  app.get(
    '/api/processes',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description:
          'The choreo processes of this database (alive: a heartbeat within 10 s), the actors each hosts and which are paused.',
        response: { 200: z.array(processSchema) },
      },
    },
    () => processes.list(),
  );

  const actorParams = z.object({ name: z.enum(ACTOR_NAMES) });
  const stateOf = (actor: (typeof ACTOR_NAMES)[number]) => {
    const state = actors.actorStates().find((candidate) => candidate.actor === actor);
    return {
      process_id: processes.processId,
      actor,
      group: state?.group ?? null,
      paused: state?.paused ?? false,
    };
  };
  const notHosted = (actor: string) =>
    new NotFoundError(`this process hosts no consumer named ${actor} (see GET /api/processes)`);

  app.post(
    '/api/actors/:name/pause',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description:
          'Stops an actor of the process that receives the request from reading the bus, as if its service were down: its events wait. Other processes hosting it go on.',
        params: actorParams,
        response: { 200: actorStateSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    async (request) => {
      if (!(await actors.pauseActor(request.params.name))) throw notHosted(request.params.name);
      processes.beatNow();
      return stateOf(request.params.name);
    },
  );

  app.post(
    '/api/actors/:name/resume',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description: 'Lets a paused actor of the process that receives the request read the bus again.',
        params: actorParams,
        response: { 200: actorStateSchema, 400: messageSchema, 404: messageSchema },
      },
    },
    (request) => {
      if (!actors.resumeActor(request.params.name)) throw notHosted(request.params.name);
      processes.beatNow();
      return stateOf(request.params.name);
    },
  );

  app.get(
    '/api/demo',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description: "The demo load's progress in this process.",
        response: { 200: demoProgressSchema },
      },
    },
    () => demo.progress(),
  );

  app.post(
    '/api/demo',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description:
          'Seeds the demo shop if it is not there, then sends checkouts at `rate` per second for `seconds` (80 % succeed, 10 % find no stock, 10 % cannot pay).',
        body: z.object({
          rate: z.number().min(0.5).max(200),
          seconds: z.number().int().min(1).max(600),
        }),
        response: { 202: demoProgressSchema, 400: messageSchema, 409: messageSchema },
      },
    },
    async (request, reply) => reply.status(202).send(await demo.start(request.body)),
  );

  app.post(
    '/api/demo/stop',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['explorer'],
        description: 'Stops sending demo checkouts (those sent go on through the saga).',
        response: { 200: demoProgressSchema },
      },
    },
    async () => {
      await demo.stop();
      return demo.progress();
    },
  );
};
