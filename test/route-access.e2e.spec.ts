import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { declaredRoutes } from '../src/api/auth/access-control.js';
import type { RouteAccess } from '../src/api/auth/caller.js';
import { eventually } from './support/eventually.js';
import type { HttpClient } from './support/http-client.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/**
 * Issue 19, point 1: every route of the app × every kind of caller, against a declared rule. The routes
 * come from the app itself (what its access control saw registered), never from a list kept here: a
 * route added without a rule in RULES fails, and so does a rule whose route is gone. A refused request
 * writes nothing.
 */

const METRICS_TOKEN = `test-metrics-${randomBytes(16).toString('hex')}`;
const ORIGIN = 'http://shop.example';

type CallerName =
  | 'anonymous'
  | 'bad token'
  | 'not bearer'
  | 'metrics token'
  | 'owner'
  | 'other client'
  | 'staff';
const CALLERS: readonly CallerName[] = [
  'anonymous',
  'bad token',
  'not bearer',
  'metrics token',
  'other client',
  'owner',
  'staff',
];

/** The ids a request needs: the owning client's resources, and what the shop holds. */
interface World {
  owner: number;
  other: number;
  /** A third client, whose token the token route replaces (the owner's must keep working). */
  spare: number;
  magasin: number;
  produit: number;
  commande: string;
}

interface Sent {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Rule {
  access: RouteAccess;
  /** A `client` route about one client's resources: another client gets the 404 of an unknown id. */
  owned?: boolean;
  request: (world: World) => Omit<Sent, 'method'>;
  /** Before each request (a cart to check out, say). */
  arrange?: (world: World, staff: HttpClient) => Promise<void>;
  /** After an accepted request (stop what it started). */
  undo?: (world: World, staff: HttpClient) => Promise<void>;
  /** What an allowed caller gets, when it is not a 2xx (a re-drive of a dead letter that does not exist). */
  allowedStatus?: number;
}

const get =
  (path: (world: World) => string) =>
  (world: World): Omit<Sent, 'method'> => ({ path: path(world) });

const addToOwnersCart = async (world: World, staff: HttpClient) => {
  const added = await staff.post(`/api/panier/${world.owner}/articles`, {
    produit_id: world.produit,
    quantite: 1,
  });
  expect(added.status, added.text).toBe(200);
};

/** Every route of the app with who may call it: the same table as the routes' own `config: { access }`. */
const RULES: Record<string, Rule> = {
  'GET /health': { access: 'public', request: get(() => '/health') },
  'GET /ready': { access: 'public', request: get(() => '/ready') },
  'GET /': { access: 'public', request: get(() => '/') },
  'GET /explorer': { access: 'public', request: get(() => '/explorer') },
  'GET /explorer/assets/:file': { access: 'public', request: get(() => '/explorer/assets/explorer.js') },
  'GET /docs': { access: 'public', request: get(() => '/docs') },
  'GET /docs/': { access: 'public', request: get(() => '/docs/') },
  'GET /docs/static/index.html': { access: 'public', request: get(() => '/docs/static/index.html') },
  'GET /docs/static/swagger-initializer.js': {
    access: 'public',
    request: get(() => '/docs/static/swagger-initializer.js'),
  },
  'GET /docs/static/*': { access: 'public', request: get(() => '/docs/static/swagger-ui.css') },
  'GET /docs/json': { access: 'public', request: get(() => '/docs/json') },
  'GET /docs/yaml': { access: 'public', request: get(() => '/docs/yaml') },
  'OPTIONS *': {
    access: 'public',
    request: () => ({
      path: '/api/panier/1/checkout',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
    }),
  },
  'GET /metrics': { access: 'metrics', request: get(() => '/metrics') },

  'GET /api/magasins': { access: 'client', request: get(() => '/api/magasins') },
  'GET /api/magasins/:id': { access: 'client', request: get((w) => `/api/magasins/${w.magasin}`) },
  'GET /api/produits': { access: 'client', request: get(() => '/api/produits') },
  'GET /api/produits/:id': { access: 'client', request: get((w) => `/api/produits/${w.produit}`) },
  'GET /api/stock/magasin/:magasinId': {
    access: 'client',
    request: get((w) => `/api/stock/magasin/${w.magasin}`),
  },
  'POST /api/magasins': {
    access: 'staff',
    request: () => ({ path: '/api/magasins', body: { nom: `Magasin ${randomBytes(4).toString('hex')}` } }),
  },
  'POST /api/produits': {
    access: 'staff',
    request: () => ({ path: '/api/produits', body: { nom: 'Poire', prix: 1 } }),
  },
  'PUT /api/stock/:magasinId/:produitId': {
    access: 'staff',
    request: (w) => ({ path: `/api/stock/${w.magasin}/${w.produit}`, body: { quantite: 1000 } }),
  },

  'POST /api/clients': {
    access: 'staff',
    request: () => ({ path: '/api/clients', body: { nom: 'Eve', solde: 5 } }),
  },
  'GET /api/clients/:id': { access: 'client', owned: true, request: get((w) => `/api/clients/${w.owner}`) },
  'POST /api/clients/:id/token': {
    access: 'staff',
    request: (w) => ({ path: `/api/clients/${w.spare}/token` }),
  },

  'GET /api/panier/:clientId': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/panier/${w.owner}`),
  },
  'POST /api/panier/:clientId/articles': {
    access: 'client',
    owned: true,
    request: (w) => ({
      path: `/api/panier/${w.owner}/articles`,
      body: { produit_id: w.produit, quantite: 1 },
    }),
  },
  'DELETE /api/panier/:clientId/articles/:produitId': {
    access: 'client',
    owned: true,
    arrange: addToOwnersCart,
    request: (w) => ({ path: `/api/panier/${w.owner}/articles/${w.produit}` }),
  },
  'POST /api/panier/:clientId/checkout': {
    access: 'client',
    owned: true,
    arrange: addToOwnersCart,
    request: (w) => ({ path: `/api/panier/${w.owner}/checkout`, body: { magasin_id: w.magasin } }),
  },

  'GET /api/commandes': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/commandes?client_id=${w.owner}`),
  },
  'GET /api/commandes/:id': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/commandes/${w.commande}`),
  },
  'GET /api/commandes/:id/diagramme': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/commandes/${w.commande}/diagramme`),
  },
  'GET /events/projections/:aggregateId': {
    access: 'client',
    owned: true,
    request: get((w) => `/events/projections/${w.commande}`),
  },
  'GET /events/': { access: 'staff', request: get((w) => `/events/?aggregate_id=${w.commande}`) },
  'GET /api/ventes': { access: 'staff', request: get(() => '/api/ventes') },

  'GET /api/dead-letters': { access: 'staff', request: get(() => '/api/dead-letters') },
  'POST /api/dead-letters/:id/rejouer': {
    access: 'staff',
    request: () => ({ path: '/api/dead-letters/1/rejouer' }),
    allowedStatus: 404,
  },
  'GET /api/audit': { access: 'staff', request: get(() => '/api/audit') },

  'GET /api/explorer/session': { access: 'client', request: get(() => '/api/explorer/session') },
  'GET /api/explorer/live': { access: 'client', request: get(() => '/api/explorer/live?overview=0') },
  'GET /api/explorer/machine': { access: 'client', request: get(() => '/api/explorer/machine') },
  'GET /api/explorer/commandes': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/explorer/commandes?client_id=${w.owner}`),
  },
  'GET /api/explorer/commandes/:id/historique': {
    access: 'client',
    owned: true,
    request: get((w) => `/api/explorer/commandes/${w.commande}/historique`),
  },
  'GET /api/processes': { access: 'staff', request: get(() => '/api/processes') },
  'POST /api/actors/:name/pause': {
    access: 'staff',
    request: () => ({ path: '/api/actors/ventes/pause' }),
    undo: async (_world, staff) => {
      expect((await staff.post('/api/actors/ventes/resume')).status).toBe(200);
    },
  },
  'POST /api/actors/:name/resume': {
    access: 'staff',
    request: () => ({ path: '/api/actors/ventes/resume' }),
  },
  'GET /api/demo': { access: 'staff', request: get(() => '/api/demo') },
  'POST /api/demo': {
    access: 'staff',
    request: () => ({ path: '/api/demo', body: { rate: 1, seconds: 1 } }),
    undo: async (_world, staff) => {
      expect((await staff.post('/api/demo/stop')).status).toBe(200);
    },
  },
  'POST /api/demo/stop': { access: 'staff', request: () => ({ path: '/api/demo/stop' }) },
};

/** What each caller must get from a route with this rule. */
function expected(rule: Rule, caller: CallerName): 'success' | 401 | 403 | 404 {
  if (rule.access === 'public') return 'success';
  if (caller === 'anonymous' || caller === 'bad token' || caller === 'not bearer') return 401;
  if (caller === 'staff') return 'success';
  if (rule.access === 'metrics') return caller === 'metrics token' ? 'success' : 403;
  if (caller === 'metrics token' || rule.access === 'staff') return 403;
  if (caller === 'other client' && rule.owned) return 404;
  return 'success';
}

/** Every table a request could write, as a digest of its rows, and the event store's count. */
const WRITTEN_TABLES = [
  'magasins',
  'produits',
  'stock',
  'clients',
  'client_tokens',
  'panier_articles',
  'checkouts',
  'sagas',
  'choreo_settings',
];
const SNAPSHOT_SQL = `SELECT json_build_object(
  'events', (SELECT count(*) FROM events),
  ${WRITTEN_TABLES.map(
    (table) =>
      `'${table}', (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ${table} t)`,
  ).join(',\n  ')}
) AS snapshot`;
const snapshotRow = z.object({ snapshot: z.record(z.string(), z.unknown()) });
const createdClient = z.object({ id: z.number(), token: z.string() });
const messageBody = z.object({ message: z.string() });

describe('who may call each route (issue 19: roles over HTTP, deny by default)', () => {
  let system: TestSystem;
  let world: World;
  const tokens = new Map<CallerName, string | null>();

  beforeAll(async () => {
    system = await TestSystem.start('route_access', {
      bus: 'postgres',
      config: { metricsToken: METRICS_TOKEN, corsOrigins: [ORIGIN] },
    });
    const shop = new Shop(system.api);
    const magasin = await shop.magasin();
    const produit = await shop.produit(0.5);
    await shop.setStock(magasin, produit, 10_000);
    const client = async (nom: string) =>
      createdClient.parse((await system.api.post('/api/clients', { nom, solde: 1_000 })).body);
    const [owner, other, spare] = [await client('Owner'), await client('Other'), await client('Spare')];
    const ownerApi = system.api.as(owner.token);
    expect(
      (await ownerApi.post(`/api/panier/${owner.id}/articles`, { produit_id: produit, quantite: 1 })).status,
    ).toBe(200);
    const checkout = await ownerApi.post(`/api/panier/${owner.id}/checkout`, { magasin_id: magasin });
    expect(checkout.status, checkout.text).toBe(202);
    const commande = z.object({ commande_id: z.string() }).parse(checkout.body).commande_id;
    world = { owner: owner.id, other: other.id, spare: spare.id, magasin, produit, commande };
    await shop.finalCommande(commande);
    tokens.set('anonymous', null);
    tokens.set('bad token', `choreo_staff_${randomBytes(32).toString('base64url')}`);
    tokens.set('not bearer', null);
    tokens.set('metrics token', METRICS_TOKEN);
    tokens.set('owner', owner.token);
    tokens.set('other client', other.token);
    tokens.set('staff', system.api.token);
  }, 60_000);
  afterAll(async () => {
    await system?.stop();
  });

  function tableOfApp(): string[] {
    return declaredRoutes(system.choreo.http)
      .filter((route) => route.method !== 'HEAD')
      .map((route) => `${route.method} ${route.url}`);
  }

  it('has a rule for every route of the app, and no rule for a route the app does not have', () => {
    const app = tableOfApp();
    expect(app.length).toBeGreaterThan(40);
    expect(
      app.filter((route) => !(route in RULES)),
      'routes without a rule in RULES',
    ).toEqual([]);
    expect(
      Object.keys(RULES).filter((route) => !app.includes(route)),
      'rules for routes the app does not have',
    ).toEqual([]);
    // The access control's table is the router's: each of its routes is served.
    for (const route of app) {
      const [method = '', url = ''] = route.split(' ');
      const pattern = url === '*' ? '/*' : url;
      expect(system.choreo.http.hasRoute({ method: method as 'GET', url: pattern }), route).toBe(true);
    }
  });

  it('declares on each route the access its rule says (HEAD routes: their GET route’s)', () => {
    for (const route of declaredRoutes(system.choreo.http)) {
      const key = `${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}`;
      expect(route.access, key).toBe(RULES[key]?.access);
    }
  });

  it('documents in /docs which routes need a token: none for a public one, the bearer for the others', async () => {
    const document = z
      .object({
        security: z.array(z.record(z.string(), z.array(z.string()))),
        paths: z.record(
          z.string(),
          z.record(z.string(), z.object({ security: z.array(z.unknown()).optional() }).loose()),
        ),
      })
      .parse((await system.api.get('/docs/json')).body);
    expect(document.security).toEqual([{ bearer: [] }]);
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({
        key: `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`,
        needsToken: operation.security === undefined || operation.security.length > 0,
      })),
    );
    expect(documented.length).toBeGreaterThan(20);
    for (const { key, needsToken } of documented) {
      expect(RULES[key], `a rule for ${key}`).toBeDefined();
      expect(needsToken, key).toBe(RULES[key]?.access !== 'public');
    }
  });

  async function snapshot(): Promise<Record<string, unknown>> {
    return snapshotRow.parse((await system.choreo.pool.query(SNAPSHOT_SQL)).rows[0]).snapshot;
  }

  /** Until every saga is over, so that a snapshot moves only with the request under test. */
  async function settled(): Promise<void> {
    await eventually(
      async () =>
        z
          .object({ running: z.number() })
          .parse(
            (await system.choreo.pool.query('SELECT count(*)::int AS running FROM sagas WHERE NOT final'))
              .rows[0],
          ).running,
      (running) => running === 0,
      { description: 'every saga to be over' },
    );
  }

  async function send(method: string, sent: Omit<Sent, 'method'>, caller: CallerName) {
    const token = tokens.get(caller) ?? null;
    const headers: Record<string, string> = { ...sent.headers };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (caller === 'not bearer')
      headers.authorization = `Basic ${Buffer.from('staff:secret').toString('base64')}`;
    let body: string | undefined;
    if (sent.body !== undefined || method === 'POST' || method === 'PUT') {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(sent.body ?? {});
    }
    const response = await fetch(`${system.api.baseUrl}${sent.path}`, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    const isStream = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
    // The live feed streams until the client leaves: its status is the answer.
    if (isStream) await response.body?.cancel();
    const text = isStream ? '' : await response.text();
    return { status: response.status, text, wwwAuthenticate: response.headers.get('www-authenticate') };
  }

  for (const [key, rule] of Object.entries(RULES)) {
    const method = key.slice(0, key.indexOf(' '));
    it(`${key} (${rule.access}${rule.owned ? ', the owner’s' : ''})`, async () => {
      const sentMethod = method === 'OPTIONS' ? 'OPTIONS' : method;
      const writes = !['GET', 'OPTIONS'].includes(method);
      const staff = system.api;
      const outcomes: string[] = [];
      // The refused callers first, each on a settled system: whatever it had before, it has after.
      const order = [...CALLERS].sort(
        (a, b) => Number(expected(rule, a) === 'success') - Number(expected(rule, b) === 'success'),
      );
      for (const caller of order) {
        await rule.arrange?.(world, staff);
        const want = expected(rule, caller);
        if (writes) await settled();
        const before = writes && want !== 'success' ? await snapshot() : null;
        const answer = await send(sentMethod, rule.request(world), caller);
        const got = answer.status;
        const ok =
          want === 'success'
            ? rule.allowedStatus !== undefined && rule.access !== 'public'
              ? got === rule.allowedStatus
              : got >= 200 && got < 400
            : got === want;
        if (!ok) outcomes.push(`${caller}: expected ${want}, got ${got} ${answer.text.slice(0, 200)}`);
        if (want === 401) {
          expect(answer.wwwAuthenticate, `${key} as ${caller}`).toMatch(/^Bearer/);
          expect(
            messageBody.safeParse(JSON.parse(answer.text)).success,
            `${key} as ${caller}: {message}, got ${answer.status} ${answer.text.slice(0, 200)}`,
          ).toBe(true);
        }
        if (want === 403 || want === 404) {
          expect(
            messageBody.safeParse(JSON.parse(answer.text)).success,
            `${key} as ${caller}: {message}, got ${answer.status} ${answer.text.slice(0, 200)}`,
          ).toBe(true);
        }
        if (before !== null) {
          if (writes) await settled();
          expect(await snapshot(), `${key} as ${caller} (refused: ${got}) wrote nothing`).toEqual(before);
        }
        if (want === 'success' && got < 300) await rule.undo?.(world, staff);
        // A cart filled for a refused caller is emptied by the next accepted one; leave none behind.
        if (rule.arrange !== undefined)
          await staff.delete(`/api/panier/${world.owner}/articles/${world.produit}`);
      }
      expect(outcomes, key).toEqual([]);
    });
  }

  it("answers another client's resource with the very answer an unknown id gets", async () => {
    const other = system.api.as(tokens.get('other client') ?? '');
    const unknownCommande = `cmd-${randomBytes(8).toString('hex')}`;
    const pairs: [string, string][] = [
      [`/api/clients/${world.owner}`, '/api/clients/2147483647'],
      [`/api/commandes/${world.commande}`, `/api/commandes/${unknownCommande}`],
      [`/events/projections/${world.commande}`, `/events/projections/${unknownCommande}`],
    ];
    for (const [owned, unknown] of pairs) {
      const [a, b] = [await other.get(owned), await system.api.get(unknown)];
      expect(a.status).toBe(404);
      expect(b.status).toBe(404);
      expect(a.text.replace(owned.split('/').at(-1) ?? '', 'ID')).toBe(
        b.text.replace(unknown.split('/').at(-1) ?? '', 'ID'),
      );
    }
  });

  it('lists to a client its own commandes only, whatever it asks for', async () => {
    const commandeIds = (body: unknown) =>
      z.array(z.object({ commande_id: z.string(), client_id: z.number() })).parse(body);
    const owner = system.api.as(tokens.get('owner') ?? '');
    const other = system.api.as(tokens.get('other client') ?? '');
    const ownList = commandeIds((await owner.get('/api/commandes')).body);
    expect(ownList.map((commande) => commande.commande_id)).toContain(world.commande);
    expect(new Set(ownList.map((commande) => commande.client_id))).toEqual(new Set([world.owner]));
    expect(commandeIds((await other.get('/api/commandes')).body)).toEqual([]);
    expect((await other.get(`/api/commandes?client_id=${world.owner}`)).status).toBe(404);
    expect(commandeIds((await system.api.get('/api/commandes')).body).map((c) => c.commande_id)).toContain(
      world.commande,
    );
  });

  /** The status line of a request sent as these bytes (fetch cannot send one header twice). */
  async function statusOfRaw(request: string): Promise<string> {
    const { port } = new URL(system.api.baseUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    return answer.slice(0, answer.indexOf('\r\n'));
  }

  it('reads no token from a request with several Authorization headers, whichever comes first', async () => {
    const [owner, other] = [tokens.get('owner') ?? '', tokens.get('other client') ?? ''];
    const staff = system.api.token ?? '';
    const twice = (path: string, first: string, second: string) =>
      statusOfRaw(
        `GET ${path} HTTP/1.1\r\nHost: choreo\r\nAuthorization: Bearer ${first}\r\n` +
          `Authorization: Bearer ${second}\r\nConnection: close\r\n\r\n`,
      );
    const ownersClient = `/api/clients/${world.owner}`;
    for (const [first, second] of [
      [owner, other],
      [other, owner],
      [owner, 'not-a-token'],
      [staff, owner],
      [owner, owner],
    ] as const) {
      expect(await twice(ownersClient, first, second)).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(await twice('/api/audit', staff, staff)).toMatch(/^HTTP\/1\.1 400 /);
    // A public route reads no token: two headers change nothing there.
    expect(await twice('/health', owner, other)).toMatch(/^HTTP\/1\.1 200 /);
    // One header, as usual.
    expect(
      await statusOfRaw(
        `GET ${ownersClient} HTTP/1.1\r\nHost: choreo\r\nAuthorization: Bearer ${owner}\r\nConnection: close\r\n\r\n`,
      ),
    ).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("gives a client replaying another client's Idempotency-Key a commande of its own, never the other's", async () => {
    const key = `key-${randomBytes(6).toString('hex')}`;
    const checkoutWith = async (clientId: number, token: string) => {
      const api = system.api.as(token);
      const added = await api.post(`/api/panier/${clientId}/articles`, {
        produit_id: world.produit,
        quantite: 1,
      });
      expect(added.status, added.text).toBe(200);
      const answer = await api.post(
        `/api/panier/${clientId}/checkout`,
        { magasin_id: world.magasin },
        { 'idempotency-key': key },
      );
      expect(answer.status, answer.text).toBe(202);
      return z.object({ commande_id: z.string() }).parse(answer.body).commande_id;
    };
    const owners = await checkoutWith(world.owner, tokens.get('owner') ?? '');
    const others = await checkoutWith(world.other, tokens.get('other client') ?? '');
    expect(others).not.toBe(owners);
    const other = system.api.as(tokens.get('other client') ?? '');
    // The read model follows the event store within milliseconds.
    const seen = await eventually(
      async () => other.get(`/api/commandes/${others}`),
      (answer) => answer.status === 200,
      { description: "the other client's commande in the read model" },
    );
    expect(z.object({ client_id: z.number() }).parse(seen.body).client_id).toBe(world.other);
    // The same key on the owner's path, from the other client: the answer of an unknown client.
    const replayed = await other.post(
      `/api/panier/${world.owner}/checkout`,
      { magasin_id: world.magasin },
      { 'idempotency-key': key },
    );
    expect(replayed.status).toBe(404);
    expect(replayed.text).not.toContain(owners);
    await settled();
  });

  it('never reads a token from the query string', async () => {
    const owner = tokens.get('owner') ?? '';
    const answer = await system.api
      .anonymous()
      .get(`/api/clients/${world.owner}?token=${owner}&access_token=${owner}`);
    expect(answer.status).toBe(401);
  });
});
