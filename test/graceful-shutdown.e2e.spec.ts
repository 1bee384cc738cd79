import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BusProbe, busProbe, CONSUMER_GROUPS } from './support/bus-probe.js';
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

  /**
   * Work the worker holds or is about to take: on Redis, entries its groups read and have not
   * acknowledged; on PostgreSQL (where a batch in hand lasts a few milliseconds), events its groups'
   * checkpoints are not past yet.
   */
  async function workInHand(): Promise<number> {
    if (bus === 'redis') return (await probe.eventsInHand()).reduce((sum, held) => sum + held.count, 0);
    let waiting = 0;
    for (const [group, streams] of CONSUMER_GROUPS)
      for (const stream of streams) waiting += await probe.eventsWaiting(stream, group);
    return waiting;
  }

  it('given a worker busy with orders, when it gets SIGTERM, then it finishes the work in hand, exits 0, and a new worker completes every order', async () => {
    // given a worker hosting the services, busy with orders that keep coming until it has exited (so that
    // its last read has work in it, whose acknowledgement only the shutdown can send)
    const worker = startWorker();
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 5_000);
    const client = await shop.client(5_000);
    const commandes: string[] = [];
    let ordering = true;
    const placing = (async () => {
      while (ordering && commandes.length < 4_000)
        commandes.push(await shop.order(client, magasin, [[produit, 1]]));
    })();
    try {
      await eventually(
        async () => (commandes[0] === undefined ? null : await shop.commande(commandes[0])),
        (commande) => commande !== null && commande.statut !== 'en_attente_stock',
        { description: 'the worker to be up and working' },
      );
      const inHandAtSigterm = await eventually(workInHand, (count) => count > 0, {
        description: 'the worker to have work in hand',
        intervalMs: 5,
      });
      expect(inHandAtSigterm).toBeGreaterThan(0);

      // when it is asked to stop, with that work in hand
      await worker.kill('SIGTERM');
    } finally {
      ordering = false;
      await placing;
    }

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
