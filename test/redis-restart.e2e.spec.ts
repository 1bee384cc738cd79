import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';
import { RedisServer } from './support/redis-server.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

// Redis only: what a Redis that restarts empty must not cost (the PostgreSQL bus keeps nothing elsewhere).
describeOnBus('redis', 'Redis restarts and loses its data', () => {
  let redis: RedisServer;
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    // everything but the sales service, whose events will wait in Redis when Redis goes down
    system = await TestSystem.start('redis_restart', {
      bus: 'redis',
      actors: ['panier', 'stock', 'client', 'saga', 'relay', 'projections'],
      config: { redisUrl: redis.url },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
    await redis?.kill();
  });

  it('reconnects, re-creates the groups, republishes what Redis lost, and completes the orders in flight', async () => {
    // given orders paid and waiting for the sales service, their events only in Redis' streams
    const magasin = await shop.magasin();
    const produit = await shop.produit(3);
    await shop.setStock(magasin, produit, 20);
    const client = await shop.client(100);
    const before: string[] = [];
    for (let i = 0; i < 3; i++) before.push(await shop.order(client, magasin, [[produit, 1]]));
    for (const commandeId of before) {
      await eventually(
        () => shop.commande(commandeId),
        (commande) => commande.statut === 'paiement_accepte',
      );
    }

    // when Redis dies and comes back empty
    await redis.kill();
    await redis.start();

    // then the sales service, started now, still gets every event, and new orders go through as well
    await system.addNode(['ventes']);
    const after = await shop.order(client, magasin, [[produit, 2]]);
    for (const commandeId of [...before, after]) {
      expect((await shop.finalCommande(commandeId, 30_000)).statut).toBe('vente_confirmee');
    }
    expect(await shop.solde(client)).toBe(85);
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 15, reservee: 0 })).toEqual({
      quantite: 15,
      reservee: 0,
    });
  });
});
