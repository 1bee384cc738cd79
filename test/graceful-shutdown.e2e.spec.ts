import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BusProbe, busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';
import { killAllWorkers, WorkerProcess } from './support/worker-process.js';

describeOnEachBus('graceful shutdown on SIGTERM', (bus) => {
  let system: TestSystem;
  let probe: BusProbe;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('sigterm', { bus, actors: ['panier', 'projections', 'relay'] });
    probe = busProbe(system);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await killAllWorkers();
    await probe?.close();
    await system?.stop();
  });

  function startWorker(): WorkerProcess {
    return new WorkerProcess({
      BUS: bus,
      DATABASE_URL: system.database.url,
      STREAM_PREFIX: system.streamPrefix,
      ACTORS: 'stock,client,ventes,saga',
      DATABASE_POOL_SIZE: '6',
    });
  }

  it('given a worker busy with orders, when it gets SIGTERM, then it finishes the work in hand, exits 0, and a new worker completes every order', async () => {
    // given a worker hosting the services, busy with orders
    const worker = startWorker();
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

    // then it exits cleanly, and no group holds an event it took without recording that it finished it
    // (Redis: no entry pending; PostgreSQL: no event applied past its group's checkpoint)
    const exit = await worker.exited;
    expect(exit, worker.output).toEqual({ code: 0, signal: null });
    const inHand = await probe.eventsInHand();
    expect(inHand.length).toBeGreaterThan(0);
    expect(inHand.filter((held) => held.count > 0)).toEqual([]);
    // and a new worker picks up where it stopped: every order completes
    const next = startWorker();
    try {
      for (const commandeId of commandes)
        expect((await shop.finalCommande(commandeId, 30_000)).statut).toBe('vente_confirmee');
    } finally {
      await next.kill('SIGTERM');
    }
  });
});
