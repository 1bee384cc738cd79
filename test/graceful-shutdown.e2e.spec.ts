import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { groupsOf } from './support/stream-groups.js';
import { TestSystem } from './support/test-system.js';
import { killAllWorkers, WorkerProcess } from './support/worker-process.js';

describe('graceful shutdown on SIGTERM', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('sigterm', { actors: ['panier', 'projections', 'relay'] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await killAllWorkers();
    await system?.stop();
  });

  it('finishes and acknowledges the work in hand, exits 0, and leaves nothing pending', async () => {
    // given a worker hosting the services, busy with orders
    const worker = new WorkerProcess({
      DATABASE_URL: system.database.url,
      STREAM_PREFIX: system.streamPrefix,
      ACTORS: 'stock,client,ventes,saga',
      DATABASE_POOL_SIZE: '6',
    });
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 100);
    const client = await shop.client(100);
    const commandes: string[] = [];
    for (let i = 0; i < 20; i++) commandes.push(await shop.order(client, magasin, [[produit, 1]]));
    await eventually(
      () => shop.commande(commandes[0] ?? ''),
      (commande) => commande.statut !== 'en_attente_stock',
      {
        description: 'the worker to be up and working',
      },
    );

    // when it is asked to stop
    await worker.kill('SIGTERM');

    // then it exits cleanly, and no entry is left pending in any group
    const exit = await worker.exited;
    expect(exit, worker.output).toEqual({ code: 0, signal: null });
    for (const stream of [
      'commande.evenements',
      'stock.evenements',
      'paiement.evenements',
      'vente.evenements',
    ]) {
      const groups = await groupsOf(system.redis, `${system.streamPrefix}${stream}`);
      for (const group of groups)
        expect({ stream, group: group.name, pending: group.pending }).toMatchObject({ pending: 0 });
    }
    // and a new worker picks up where it stopped: every order completes
    const next = new WorkerProcess({
      DATABASE_URL: system.database.url,
      STREAM_PREFIX: system.streamPrefix,
      ACTORS: 'stock,client,ventes,saga',
      DATABASE_POOL_SIZE: '6',
    });
    try {
      for (const commandeId of commandes)
        expect((await shop.finalCommande(commandeId, 30_000)).statut).toBe('vente_confirmee');
    } finally {
      await next.kill('SIGTERM');
    }
  });
});
