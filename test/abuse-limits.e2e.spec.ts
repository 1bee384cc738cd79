import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../src/api/rate-limiter.js';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_CHECKOUT_RATE_BURST,
  DEFAULT_CHECKOUT_RATE_LIMIT,
  loadConfig,
} from '../src/config.js';
import { routesOfTable } from './bad-input-requests.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TEST_STAFF_TOKEN, TestSystem } from './support/test-system.js';

/**
 * Issue 19, point 3: a client's checkouts are rate-limited (429 with Retry-After), request bodies have a
 * size limit (413), the explorer's pages send the usual security headers and the API's answers nosniff,
 * and CORS is off unless configured. HTTP only: on the PostgreSQL bus, with no actor (a checkout is the
 * API's own work).
 */

const ALLOWED_ORIGIN = 'http://shop.example';
const OTHER_ORIGIN = 'http://elsewhere.example';

/** A request as staff (the limits hold whoever calls). */
async function send(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = {
    authorization: `Bearer ${TEST_STAFF_TOKEN}`,
    ...(init.headers as Record<string, string>),
  };
  const response = await fetch(url, {
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
    ...init,
    headers,
  });
  // The explorer's live feed streams until the client leaves: its headers are the answer.
  if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream'))
    await response.body?.cancel();
  else await response.arrayBuffer();
  return response;
}

function corsHeaders(response: Response): string[] {
  return [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));
}

describe('a system with the default limits', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // What a process started without these variables applies (a Config written by hand has no rate limit).
    const { checkoutRateLimit, checkoutRateBurst, bodyLimitBytes, corsOrigins } = loadConfig({});
    system = await TestSystem.start('abuse-default', {
      bus: 'postgres',
      actors: [],
      config: { checkoutRateLimit, checkoutRateBurst, bodyLimitBytes, corsOrigins },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('defaults that a client ordering by hand, the demo load (about 20 checkouts/s per client at its top rate) and the bench (one checkout per client) never reach', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      checkoutRateLimit: DEFAULT_CHECKOUT_RATE_LIMIT,
      checkoutRateBurst: DEFAULT_CHECKOUT_RATE_BURST,
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      corsOrigins: [],
    });
    expect(DEFAULT_CHECKOUT_RATE_LIMIT).toBeGreaterThanOrEqual(25);
    expect(DEFAULT_CHECKOUT_RATE_BURST).toBeGreaterThanOrEqual(50);
  });

  it('checks out the same client many times in a row without a 429', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 1_000);
    const client = await shop.client(1_000);
    for (let order = 0; order < 20; order += 1) await shop.order(client, magasin, [[produit, 1]]);
  });

  it("lets the explorer's demo load run at its top rate without a refusal", async () => {
    const started = await system.api.post('/api/demo', { rate: 200, seconds: 2 });
    expect(started.status).toBe(202);
    const done = await eventually(
      async () => (await system.api.get('/api/demo')).body as { state: string },
      (progress) => progress.state !== 'seeding' && progress.state !== 'running',
      { timeoutMs: 30_000, description: 'the demo load to end' },
    );
    expect(done).toMatchObject({ state: 'done', errors: 0, last_error: null });
  });

  it('refuses a body beyond the limit with 413 naming it, and writes nothing; the largest legitimate body passes', async () => {
    // the largest legitimate body: a product whose name is 200 characters, each escaped as \uXXXX
    const longest = 'é'.repeat(200);
    const legitimate = `{"nom":${JSON.stringify(longest).replaceAll('é', '\\u00e9')},"prix":99999999.99}`;
    expect(Buffer.byteLength(legitimate)).toBeLessThan(DEFAULT_BODY_LIMIT_BYTES / 8);
    expect((await system.api.post('/api/produits', legitimate)).status).toBe(201);

    const produitsBefore = await system.api.get('/api/produits');
    const tooLarge = JSON.stringify({ nom: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES), prix: 1 });
    const refused = await system.api.post('/api/produits', tooLarge);
    expect(refused.status).toBe(413);
    expect(refused.body).toEqual({
      message: `body: is too large (at most ${DEFAULT_BODY_LIMIT_BYTES} bytes)`,
    });

    // sent in chunks, without a content-length: refused as it arrives
    const chunks = new TextEncoder().encode(tooLarge);
    const streamed = await fetch(`${system.api.baseUrl}/api/produits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...system.api.authorization },
      body: new ReadableStream({
        start(controller) {
          for (let at = 0; at < chunks.length; at += 1_000) controller.enqueue(chunks.slice(at, at + 1_000));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toEqual({
      message: `body: is too large (at most ${DEFAULT_BODY_LIMIT_BYTES} bytes)`,
    });
    expect((await system.api.get('/api/produits')).body).toEqual(produitsBefore.body);
  });

  it("sends the security headers with the explorer's page and files, and nosniff with every API answer", async () => {
    const base = system.api.baseUrl;
    for (const path of [
      '/explorer',
      '/explorer/assets/explorer.js',
      '/explorer/assets/explorer.css',
      '/explorer/assets/none.js',
    ]) {
      const response = await send(`${base}${path}`);
      const csp = response.headers.get('content-security-policy') ?? '';
      const directives = csp.split(';').map((directive) => directive.trim());
      expect(directives, path).toContain("default-src 'self'");
      expect(directives, path).toContain("frame-ancestors 'none'");
      expect(directives, path).toContain("object-src 'none'");
      // 'self' only: nothing inline, nothing evaluated, no other origin (images: also the empty data: icon)
      expect(csp, path).not.toMatch(/unsafe-|\*|https?:/);
      expect(
        directives.filter((directive) => directive.includes('data:')),
        path,
      ).toEqual(["img-src 'self' data:"]);
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
    }

    const answers = [
      await send(`${base}/api/magasins`),
      await send(`${base}/api/magasins/999999`),
      await send(`${base}/api/magasins/zero`),
      await send(`${base}/nowhere`),
      await send(`${base}/api/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      }),
      await send(`${base}/health`),
    ];
    expect(answers.map((response) => response.status)).toEqual([200, 404, 400, 404, 400, 200]);
    for (const response of answers) {
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('answers no CORS header on any route of the table, preflights included, when CORS_ORIGINS is unset', async () => {
    const routes = routesOfTable(system.choreo.http.printRoutes({ commonPrefix: false })).filter(
      (route) => route.method !== 'HEAD',
    );
    expect(routes.length).toBeGreaterThan(30);
    for (const route of routes) {
      const path = route.url.replace(/:[A-Za-z]+/g, '1').replace('*', 'x');
      const withBody = route.method === 'POST' || route.method === 'PUT';
      const request = await send(`${system.api.baseUrl}${path}`, {
        method: route.method,
        headers: { origin: ALLOWED_ORIGIN, ...(withBody ? { 'content-type': 'application/json' } : {}) },
        ...(withBody ? { body: '{}' } : {}),
      });
      expect(corsHeaders(request), `${route.method} ${route.url}`).toEqual([]);
      const preflight = await send(`${system.api.baseUrl}${path}`, {
        method: 'OPTIONS',
        headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': route.method },
      });
      expect(corsHeaders(preflight), `OPTIONS ${route.url}`).toEqual([]);
      expect(preflight.status).toBe(404);
    }
  });
});

describe('a system with a small checkout rate, a smaller body limit and CORS for one origin', () => {
  let system: TestSystem;
  let shop: Shop;
  let magasin: number;
  let produit: number;

  beforeAll(async () => {
    system = await TestSystem.start('abuse-configured', {
      bus: 'postgres',
      // the read model, to count a client's commandes
      actors: ['projections'],
      config: {
        checkoutRateLimit: 1,
        checkoutRateBurst: 2,
        bodyLimitBytes: 4_096,
        corsOrigins: [ALLOWED_ORIGIN],
      },
    });
    shop = new Shop(system.api);
    magasin = await shop.magasin();
    produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 1_000);
  });
  afterAll(async () => {
    await system?.stop();
  });

  function checkout(clientId: number | string) {
    return system.api.post(`/api/panier/${clientId}/checkout`, { magasin_id: magasin });
  }

  it('answers 429 with Retry-After past a client its burst, refuses without writing, leaves other clients alone, and passes again after Retry-After', async () => {
    const client = await shop.client(1_000);
    const other = await shop.client(1_000);
    await shop.order(client, magasin, [[produit, 1]]);
    await shop.order(client, magasin, [[produit, 1]]);
    await shop.addToCart(client, produit, 3);

    const refused = await system.api.request('POST', `/api/panier/${client}/checkout`, {
      magasin_id: magasin,
    });
    const refusedAt = Date.now();
    const raw = await fetch(`${system.api.baseUrl}/api/panier/0${client}/checkout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...system.api.authorization },
      body: JSON.stringify({ magasin_id: magasin }),
    });

    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      message: `too many checkouts for client ${client}: at most 1 per second (2 at once); retry in 1 s`,
    });
    // the same client written another way is the same client
    expect(raw.status).toBe(429);
    const retryAfter = Number(raw.headers.get('retry-after'));
    expect(retryAfter).toBe(1);
    // nothing written: the cart is still there, and the client has two commandes
    expect((await system.api.get(`/api/panier/${client}`)).body).toMatchObject({
      articles: [{ produit_id: produit, quantite: 3 }],
    });
    expect(await commandesOf(client, 2)).toBe(2);

    await shop.order(other, magasin, [[produit, 1]]);

    await eventually(
      async () => Date.now(),
      (now) => now >= refusedAt + retryAfter * 1_000,
      { timeoutMs: 5_000, description: 'Retry-After to pass' },
    );
    expect((await checkout(client)).status).toBe(202);
    // had the refused checkouts written a commande, it would be in the read model before this one
    expect(await commandesOf(client, 3)).toBe(3);
  });

  it('counts the checkouts that fail later (an empty cart) against the client, not the ones the path refuses', async () => {
    const client = await shop.client(10);
    expect((await checkout(client)).status).toBe(409);
    expect((await checkout(client)).status).toBe(409);
    expect((await checkout(client)).status).toBe(429);
    expect((await checkout('0')).status).toBe(400);
    expect((await checkout('0')).status).toBe(400);
    expect((await checkout('0')).status).toBe(400);
  });

  it('applies the configured body limit', async () => {
    const refused = await system.api.post('/api/clients', { nom: 'x'.repeat(5_000), solde: 1 });
    expect(refused.status).toBe(413);
    expect(refused.body).toEqual({ message: 'body: is too large (at most 4096 bytes)' });
  });

  it('answers CORS to the configured origin only: its requests, its preflights, and the Retry-After of a 429', async () => {
    const base = system.api.baseUrl;
    const allowed = await send(`${base}/api/magasins`, { headers: { origin: ALLOWED_ORIGIN } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers.get('vary')).toMatch(/origin/i);

    const other = await send(`${base}/api/magasins`, { headers: { origin: OTHER_ORIGIN } });
    expect(other.status).toBe(200);
    expect(corsHeaders(other)).toEqual([]);
    expect(other.headers.get('vary')).toMatch(/origin/i);

    const preflight = await send(`${base}/api/panier/1/checkout`, {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, idempotency-key',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('idempotency-key');

    const otherPreflight = await send(`${base}/api/panier/1/checkout`, {
      method: 'OPTIONS',
      headers: { origin: OTHER_ORIGIN, 'access-control-request-method': 'POST' },
    });
    expect(corsHeaders(otherPreflight)).toEqual([]);

    const client = await shop.client(10);
    let limited: Response | undefined;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      limited = await send(`${base}/api/panier/${client}/checkout`, {
        method: 'POST',
        headers: { origin: ALLOWED_ORIGIN, 'content-type': 'application/json' },
        body: JSON.stringify({ magasin_id: magasin }),
      });
    }
    expect(limited?.status).toBe(429);
    expect(limited?.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(limited?.headers.get('access-control-expose-headers')).toContain('retry-after');
  });

  /** The client's commandes in the read model, once it shows at least `atLeast`. */
  async function commandesOf(clientId: number, atLeast: number): Promise<number> {
    return eventually(
      async () => {
        const response = await system.api.get(`/api/commandes?client_id=${clientId}`);
        return Array.isArray(response.body) ? response.body.length : -1;
      },
      (count) => count >= atLeast,
      { description: `client ${clientId}'s ${atLeast} commandes in the read model` },
    );
  }
});

describe('the configuration of the limits', () => {
  it('reads CHECKOUT_RATE_LIMIT, CHECKOUT_RATE_BURST, BODY_LIMIT_BYTES and CORS_ORIGINS', () => {
    expect(
      loadConfig({
        CHECKOUT_RATE_LIMIT: '0.5',
        CHECKOUT_RATE_BURST: '3',
        BODY_LIMIT_BYTES: '65536',
        CORS_ORIGINS: ' http://shop.example, https://pos.example:8443 ,',
      }),
    ).toMatchObject({
      checkoutRateLimit: 0.5,
      checkoutRateBurst: 3,
      bodyLimitBytes: 65_536,
      corsOrigins: ['http://shop.example', 'https://pos.example:8443'],
    });
    expect(loadConfig({ CHECKOUT_RATE_LIMIT: '0', CORS_ORIGINS: '' })).toMatchObject({
      checkoutRateLimit: 0,
      corsOrigins: [],
    });
    expect(() => loadConfig({ CORS_ORIGINS: 'http://shop.example/' })).toThrow(/CORS_ORIGINS/);
    const sameToken = 'one-token-for-staff-and-prometheus';
    expect(() => loadConfig({ CHOREO_ADMIN_TOKEN: sameToken, CHOREO_METRICS_TOKEN: sameToken })).toThrow(
      /CHOREO_METRICS_TOKEN: must differ from CHOREO_ADMIN_TOKEN/,
    );
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CHECKOUT_RATE_BURST: '0' })).toThrow(/CHECKOUT_RATE_BURST/);
    expect(() => loadConfig({ BODY_LIMIT_BYTES: '10' })).toThrow(/BODY_LIMIT_BYTES/);
  });
});

describe("the checkout rate limiter's memory", () => {
  it('forgets a client once its allowance is full again, so that it holds only the clients of the last burst / rate seconds', async () => {
    // a burst refills in 200 ms
    const limiter = new RateLimiter({ perSecond: 10, burst: 2 });
    for (let client = 1; client <= 1_000; client += 1) expect(limiter.take(client).allowed).toBe(true);
    expect(limiter.size).toBeGreaterThan(0);
    await eventually(
      async () => limiter.size,
      (size) => size === 0,
      { timeoutMs: 5_000, description: 'the idle clients to be forgotten' },
    );
  });

  it('never holds more than its bound of clients, whatever the traffic', () => {
    // a burst refills in 100 s: no client is forgotten for being idle here
    const limiter = new RateLimiter({ perSecond: 0.01, burst: 1 }, 100);
    for (let client = 1; client <= 10_000; client += 1) limiter.take(client);
    expect(limiter.size).toBe(100);
    // the most recent clients are the ones it remembers
    expect(limiter.take(10_000).allowed).toBe(false);
  });
});
