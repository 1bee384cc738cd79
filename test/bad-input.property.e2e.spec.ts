import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import {
  describeRequest,
  type GeneratedRequest,
  type KnownValues,
  type Operation,
  operationsOf,
  queryString,
  type RouteInTable,
  requestsTo,
  routesOfTable,
  takesInput,
} from './bad-input-requests.js';
import { describeOnBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/**
 * Every route of the running app, fed generated requests (bad-input-requests.ts): no input answers 5xx, a
 * 400 names the field it refuses, and a refused request (4xx), like any GET, writes nothing. HTTP
 * validation does not depend on the bus: this runs on the PostgreSQL bus only. The seed is fixed and in the
 * test's name; fast-check's report of a failure gives it with the path to the counterexample. Try another
 * with BAD_INPUT_SEED; BAD_INPUT_RUNS multiplies the runs for a deeper search.
 */
const SEED = Number(process.env.BAD_INPUT_SEED ?? 20_190_419);
const RUNS_FACTOR = Number(process.env.BAD_INPUT_RUNS ?? 1);
const RUNS_FOR_A_ROUTE_WITH_INPUT = Math.round(20 * RUNS_FACTOR);
const RUNS_FOR_A_ROUTE_WITHOUT_INPUT = Math.round(3 * RUNS_FACTOR);

/** What an accepted request starts that must be stopped before the next one (nothing, for most routes). */
interface RoutePlan {
  undoAccepted?: (system: TestSystem, request: GeneratedRequest) => Promise<void>;
}

const NOTHING_TO_UNDO: RoutePlan = {};

/**
 * Each route of the app, declared: a route added later fails the test until it is declared here (say what
 * an accepted request leaves running, if anything). HEAD routes are fastify's own copies of the GET routes.
 */
const ROUTE_PLANS: Record<string, RoutePlan> = {
  'GET /': NOTHING_TO_UNDO,
  'GET /docs': NOTHING_TO_UNDO,
  'GET /docs/': NOTHING_TO_UNDO,
  'GET /docs/static/index.html': NOTHING_TO_UNDO,
  'GET /docs/static/swagger-initializer.js': NOTHING_TO_UNDO,
  'GET /docs/*': NOTHING_TO_UNDO,
  'GET /docs/json': NOTHING_TO_UNDO,
  'GET /docs/yaml': NOTHING_TO_UNDO,
  'POST /api/magasins': NOTHING_TO_UNDO,
  'GET /api/magasins': NOTHING_TO_UNDO,
  'GET /api/magasins/:id': NOTHING_TO_UNDO,
  'POST /api/produits': NOTHING_TO_UNDO,
  'GET /api/produits': NOTHING_TO_UNDO,
  'GET /api/produits/:id': NOTHING_TO_UNDO,
  'GET /api/processes': NOTHING_TO_UNDO,
  'GET /api/panier/:clientId': NOTHING_TO_UNDO,
  'POST /api/panier/:clientId/articles': NOTHING_TO_UNDO,
  'DELETE /api/panier/:clientId/articles/:produitId': NOTHING_TO_UNDO,
  'POST /api/panier/:clientId/checkout': NOTHING_TO_UNDO,
  'GET /api/stock/magasin/:magasinId': NOTHING_TO_UNDO,
  'PUT /api/stock/:magasinId/:produitId': NOTHING_TO_UNDO,
  'POST /api/clients': NOTHING_TO_UNDO,
  'GET /api/clients/:id': NOTHING_TO_UNDO,
  'POST /api/clients/:id/token': NOTHING_TO_UNDO,
  'GET /api/commandes': NOTHING_TO_UNDO,
  'GET /api/commandes/:id': NOTHING_TO_UNDO,
  'GET /api/commandes/:id/diagramme': NOTHING_TO_UNDO,
  'GET /api/ventes': NOTHING_TO_UNDO,
  'GET /api/dead-letters': NOTHING_TO_UNDO,
  'POST /api/dead-letters/:id/rejouer': NOTHING_TO_UNDO,
  'GET /api/demo': NOTHING_TO_UNDO,
  'POST /api/demo': {
    undoAccepted: async (system) => {
      await system.api.post('/api/demo/stop');
    },
  },
  'POST /api/demo/stop': NOTHING_TO_UNDO,
  'GET /api/audit': NOTHING_TO_UNDO,
  'POST /api/actors/:name/pause': {
    undoAccepted: async (system, request) => {
      await system.api.post(request.path.replace(/\/pause$/, '/resume'));
    },
  },
  'POST /api/actors/:name/resume': NOTHING_TO_UNDO,
  'GET /api/explorer/session': NOTHING_TO_UNDO,
  'GET /api/explorer/live': NOTHING_TO_UNDO,
  'GET /api/explorer/machine': NOTHING_TO_UNDO,
  'GET /api/explorer/commandes': NOTHING_TO_UNDO,
  'GET /api/explorer/commandes/:id/historique': NOTHING_TO_UNDO,
  'GET /events/': NOTHING_TO_UNDO,
  'GET /events/projections/:aggregateId': NOTHING_TO_UNDO,
  'GET /explorer': NOTHING_TO_UNDO,
  'GET /explorer/assets/:file': NOTHING_TO_UNDO,
  'GET /health': NOTHING_TO_UNDO,
  'GET /ready': NOTHING_TO_UNDO,
  'GET /metrics': NOTHING_TO_UNDO,
};

/**
 * Every table a request could write, each as a digest of its rows (so an UPDATE shows too), and the event
 * store as its count and last position. choreo_processes is left out: its heartbeat moves on its own; so
 * is the inbox, which history retention prunes in the background, and which only a handled event writes (an
 * event appended shows in the event store's count).
 */
const SERVICE_TABLES = [
  'magasins',
  'produits',
  'stock',
  'stock_reservations',
  'clients',
  'client_tokens',
  'paiements',
  'panier_articles',
  'checkouts',
  'ventes',
  'sagas',
  'saga_counts',
  'commandes_vue',
  'checkpoints',
  'bus_dead_letters',
  'choreo_settings',
];
const SNAPSHOT_SQL = `SELECT json_build_object(
  'events', (SELECT json_build_array(count(*), coalesce(max(position), 0)) FROM events),
  ${SERVICE_TABLES.map(
    (table) =>
      `'${table}', (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ${table} t)`,
  ).join(',\n  ')}
) AS snapshot`;

const snapshotRow = z.object({ snapshot: z.record(z.string(), z.unknown()) });
const messageBody = z.object({ message: z.string() });

/**
 * How a 400 names what it refuses: `body.prix: …`, `params.id: …`, `querystring.limit: …`; or, for a path
 * that is not UTF-8 once decoded (`%FF`), the router's own answer naming the path (it never reaches a route).
 */
const NAMES_THE_FIELD =
  /^(body|params|querystring|headers)(\.[\w.-]+)?: |^'[^']*' is not a valid url component$/;

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

describeOnBus('postgres', `bad input, generated for every route (fast-check seed ${SEED})`, () => {
  let system: TestSystem;
  let routes: RouteInTable[] = [];
  let operations = new Map<string, Operation>();
  const known: KnownValues = { ids: [], strings: [] };

  beforeAll(async () => {
    system = await TestSystem.start('bad_input_property');
    const shop = new Shop(system.api);
    const magasin = await shop.magasin('Centre-ville');
    const produit = await shop.produit(2.5);
    const client = await shop.client(100);
    await shop.setStock(magasin, produit, 10);
    const commande = await shop.order(client, magasin, [[produit, 1]]);
    await shop.finalCommande(commande);
    // Carts with something in them, so that a generated checkout can be accepted too.
    const otherProduit = await shop.produit(0.01);
    const otherClient = await shop.client(0);
    for (const buyer of [client, otherClient]) {
      for (const line of [produit, otherProduit]) await shop.addToCart(buyer, line, 1);
    }
    known.ids.push(magasin, produit, otherProduit, client, otherClient, 3);
    known.strings.push(commande, 'client', 'stock', 'commande-saga');
    routes = routesOfTable(system.choreo.http.printRoutes({ commonPrefix: false })).filter(
      (route) => route.method !== 'HEAD',
    );
    operations = operationsOf((await system.api.get('/docs/json')).body);
    await settled();
  });
  afterAll(async () => {
    await system?.stop();
  });

  async function snapshot(): Promise<Record<string, unknown>> {
    return snapshotRow.parse((await system.choreo.pool.query(SNAPSHOT_SQL)).rows[0]).snapshot;
  }

  /** Until every reader of the event store has caught up and every commande is final. */
  async function settled(): Promise<void> {
    await eventually(
      async () =>
        z.object({ behind: z.number(), running: z.number() }).parse(
          (
            await system.choreo.pool.query(
              `SELECT (SELECT count(*) FROM checkpoints
                        WHERE position < (SELECT coalesce(max(position), 0) FROM events))::int AS behind,
                      (SELECT count(*) FROM sagas WHERE NOT final)::int AS running`,
            )
          ).rows[0],
        ),
      ({ behind, running }) => behind === 0 && running === 0,
      { description: 'the system to settle after an accepted request' },
    );
  }

  async function send(request: GeneratedRequest): Promise<Answer> {
    const search = queryString(request.query);
    const url = `${system.api.baseUrl}${request.path}${search === '' ? '' : `?${search}`}`;
    const headers: Record<string, string> = { ...system.api.authorization, ...request.headers };
    let body: string | undefined;
    if (request.body.kind === 'json') {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.body.value) ?? 'null';
    } else if (request.body.kind === 'raw') {
      headers['content-type'] = request.body.contentType;
      body = request.body.text;
    }
    const response = await fetch(url, {
      method: request.method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    const contentType = response.headers.get('content-type') ?? '';
    if (contentType.startsWith('text/event-stream')) {
      // The explorer's live feed streams until the client leaves: its status is the answer.
      await response.body?.cancel();
      return { status: response.status, contentType, text: '' };
    }
    return { status: response.status, contentType, text: await response.text() };
  }

  function failure(request: GeneratedRequest, answer: Answer, what: string): string {
    return `${what}\n  request: ${describeRequest(request)}\n  answer: ${answer.status} ${answer.text.slice(0, 500)}`;
  }

  it('declares every route of the app (a new route fails here until ROUTE_PLANS says what it may leave running)', () => {
    const undeclared = routes
      .map(({ method, url }) => `${method} ${url}`)
      .filter((key) => !(key in ROUTE_PLANS));
    const gone = Object.keys(ROUTE_PLANS).filter(
      (key) => !routes.some(({ method, url }) => `${method} ${url}` === key),
    );
    expect({ undeclared, gone }).toEqual({ undeclared: [], gone: [] });
  });

  const routeKeys = Object.keys(ROUTE_PLANS);
  for (const routeKey of routeKeys) {
    it(`${routeKey}: no generated input answers 5xx, and a refused one writes nothing`, async () => {
      const route = routes.find(({ method, url }) => `${method} ${url}` === routeKey);
      if (!route) throw new Error(`${routeKey} is declared but not in the app's route table`);
      const operation = operations.get(routeKey);
      const plan = ROUTE_PLANS[routeKey] ?? NOTHING_TO_UNDO;
      const numRuns = takesInput(route, operation)
        ? RUNS_FOR_A_ROUTE_WITH_INPUT
        : RUNS_FOR_A_ROUTE_WITHOUT_INPUT;

      await fc.assert(
        fc.asyncProperty(requestsTo(route, operation, known), async (request) => {
          const before = await snapshot();
          const answer = await send(request);

          expect(answer.status, failure(request, answer, 'answered 5xx')).toBeLessThan(500);
          if (answer.status === 400) {
            const { message } = messageBody.parse(JSON.parse(answer.text));
            expect(message, failure(request, answer, 'a 400 that names no field')).toMatch(NAMES_THE_FIELD);
          }
          if (answer.status >= 400 || route.method === 'GET') {
            const what = answer.status >= 400 ? 'a refused request wrote' : 'a GET wrote';
            expect(await snapshot(), failure(request, answer, what)).toEqual(before);
          } else {
            await plan.undoAccepted?.(system, request);
            await settled();
          }
        }),
        { seed: SEED, numRuns },
      );
    });
  }
});
