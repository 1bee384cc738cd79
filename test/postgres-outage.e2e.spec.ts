import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { TEST_DATABASE_HOST, TEST_DATABASE_PORT } from './support/test-database.js';
import { TestSystem } from './support/test-system.js';

const auditSchema = z.object({ ok: z.boolean(), commandes: z.object({ en_cours: z.array(z.unknown()) }) });

describeOnEachBus('PostgreSQL goes away for a while', (bus) => {
  let proxy: TcpProxy;
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    proxy = await TcpProxy.start({ host: TEST_DATABASE_HOST, port: TEST_DATABASE_PORT });
    system = await TestSystem.start('pg_outage', {
      bus,
      databaseUrl: (url) => {
        const proxied = new URL(url);
        proxied.hostname = '127.0.0.1';
        proxied.port = String(proxy.port);
        return proxied.toString();
      },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await proxy?.restore();
    await system?.stop();
    await proxy?.cut();
  });

  it('answers 503 instead of hanging, pauses the actors, and loses nothing', async () => {
    // given orders on their way, and a client with a full cart
    const magasin = await shop.magasin();
    const produit = await shop.produit(1.5);
    await shop.setStock(magasin, produit, 50);
    const client = await shop.client(100);
    const inFlight = [];
    for (let i = 0; i < 5; i++) inFlight.push(await shop.order(client, magasin, [[produit, 1]]));
    await shop.addToCart(client, produit, 2);

    // when PostgreSQL becomes unreachable
    await proxy.cut();

    // then readiness says so, and the API answers 503 with a clear message, promptly
    const ready = await eventually(
      () => system.api.get('/ready'),
      (response) => response.status === 503,
      {
        description: '/ready to report PostgreSQL down',
      },
    );
    // (and of Redis, that it is fine on the Redis Streams bus, and not used on the PostgreSQL bus)
    expect(ready.body).toMatchObject({ status: 'not_ready', bus, redis: busProbe(system).redisReadiness });
    const started = Date.now();
    const checkout = await system.api.post(`/api/panier/${client}/checkout`, { magasin_id: magasin });
    expect(checkout.status).toBe(503);
    expect(checkout.body).toEqual({ message: expect.stringMatching(/unavailable.*retry/) });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await system.api.get(`/api/clients/${client}`)).status).toBe(503);

    // when it comes back
    await proxy.restore();

    // then the actors resume: every order in flight completes
    for (const commandeId of inFlight)
      expect((await shop.finalCommande(commandeId, 30_000)).statut).toBe('vente_confirmee');
    // and the refused checkout wrote nothing: the cart is still full, and checks out now
    expect((await system.api.get(`/api/panier/${client}`)).body).toMatchObject({
      articles: [{ quantite: 2 }],
    });
    const after = await shop.checkout(client, magasin);
    expect((await shop.finalCommande(after)).statut).toBe('vente_confirmee');
    // and stock and money add up
    const audit = await eventually(
      async () => auditSchema.parse((await system.api.get('/api/audit')).body),
      (report) => report.ok && report.commandes.en_cours.length === 0,
      { description: 'a clean audit' },
    );
    expect(audit.ok).toBe(true);
    expect(await shop.solde(client)).toBe(100 - 7 * 1.5);
  });
});
