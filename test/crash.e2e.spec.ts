import { afterAll, beforeAll, expect, onTestFinished } from 'vitest';
import { z } from 'zod';
import type { BusKind } from '../src/config.js';
import type { FaultPoint } from '../src/fault-injection.js';
import { describeOnEachBus, itUnlessOn } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';
import { killAllWorkers, WorkerProcess } from './support/worker-process.js';

/*
 * Crash anywhere: the process hosting the services, the saga actor and the relay is killed with SIGKILL
 * while orders flow, again and again, then a clean one takes over. Every order must end final, and the
 * audit (stock and money recomputed from the event store) must be clean: nothing lost, nothing twice.
 */

const MIN_ORDERS = 40;
const MAX_ORDERS = 1_500;
const KILLS_PER_SCENARIO = 3;
const WORKER_ACTORS = 'stock,client,ventes,saga,relay';

const auditSchema = z.object({
  ok: z.boolean(),
  stock: z.object({ ecarts: z.array(z.unknown()) }),
  argent: z.object({ ecarts: z.array(z.unknown()) }),
  commandes: z.object({ en_cours: z.array(z.unknown()) }),
});
const workInFlightSchema = z.object({ handled: z.number(), open: z.number() });
type WorkInFlight = z.infer<typeof workInFlightSchema>;
const eventsSchema = z.array(z.object({ event_type: z.string(), version: z.number() }));

// Per-entry points fire often enough at 5 %; after-ack and the relay's fire once per batch, so every
// restarted worker dies at its first batch there (work still moves: after-ack comes after the ack, and
// the relay's batch is published again by the next worker). On the PostgreSQL bus, after-commit falls
// between the handler's commit and the commit that moves its group's checkpoint.
type Scenario = {
  name: string;
  fault?: FaultPoint;
  probability?: number;
  /** Buses where the scenario cannot happen, and why. */
  meaningless?: Partial<Record<BusKind, string>>;
};
const scenarios: Scenario[] = [
  { name: 'SIGKILL from outside at random moments' },
  {
    name: 'killed inside a transaction, before it commits',
    fault: 'consumer.before-commit',
    probability: 0.05,
  },
  {
    name: 'killed between commit and acknowledgement (XACK, or the checkpoint)',
    fault: 'consumer.after-commit',
    probability: 0.05,
  },
  {
    name: 'killed right after XACK',
    fault: 'consumer.after-ack',
    probability: 1,
    meaningless: {
      postgres: 'no XACK, the checkpoint moves in the commit of its batch (after-commit covers the gap)',
    },
  },
  {
    name: 'relay killed between XADD and its checkpoint',
    fault: 'relay.after-publish',
    probability: 1,
    meaningless: { postgres: 'no relay, the consumers read the event store itself' },
  },
];

describeOnEachBus('a worker killed with SIGKILL while orders flow', (bus) => {
  let system: TestSystem;
  let shop: Shop;
  let worker: WorkerProcess | null = null;
  const killLog: string[] = [];

  beforeAll(async () => {
    // this process serves the API and the read model; the child process does all the saga work
    system = await TestSystem.start('crash', { bus, actors: ['panier', 'projections'] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await killAllWorkers();
    await system?.stop();
    if (killLog.length > 0) console.log(`kills (${bus}):\n${killLog.join('\n')}`);
  });

  /** The event store's last position. */
  async function headPosition(): Promise<number> {
    const head = await system.choreo.pool.query('SELECT coalesce(max(position), 0)::bigint AS p FROM events');
    return Number(head.rows[0].p);
  }

  /**
   * What the worker has done since `since` (events its actors appended: all but the checkouts, which this
   * process writes), and how many orders are not final yet (in the saga actor's own rows).
   */
  async function workInFlight(since: number): Promise<WorkInFlight> {
    const work = await system.choreo.pool.query(
      `SELECT (SELECT count(*) FROM events WHERE position > $1 AND source <> 'panier-service')::int AS handled,
              (SELECT count(*) FROM events AS e WHERE e.event_type = 'CommandeCreee' AND NOT EXISTS (
                 SELECT 1 FROM sagas AS s WHERE s.commande_id = e.aggregate_id AND s.final))::int AS open`,
      [since],
    );
    return workInFlightSchema.parse(work.rows[0]);
  }

  function startWorker(fault?: string): WorkerProcess {
    return new WorkerProcess({
      BUS: bus,
      DATABASE_URL: system.database.url,
      STREAM_PREFIX: system.streamPrefix,
      ACTORS: WORKER_ACTORS,
      CONSUMER_CLAIM_IDLE_MS: '500',
      DATABASE_POOL_SIZE: '8',
      // Deliveries to a worker that was killed count too; the kills here are not poison.
      CONSUMER_MAX_DELIVERIES: '20',
      ...(fault ? { CHOREO_FAULT: fault } : {}),
    });
  }

  for (const scenario of scenarios) {
    const name = `completes every order exactly once: ${scenario.name}`;
    itUnlessOn(bus, scenario.meaningless ?? {}, name, { timeout: 180_000 }, async () => {
      // given a store, products with limited stock, and clients some of whom cannot pay
      const magasin = await shop.magasin();
      const produits = [await shop.produit(1.25), await shop.produit(0.1), await shop.produit(3)];
      for (const produit of produits) await shop.setStock(magasin, produit, 150);
      const clients = await Promise.all(
        Array.from({ length: 12 }, (_, i) => shop.client(i % 4 === 0 ? 2 : 60)),
      );

      // when orders flow while the worker is killed again and again
      const fault = scenario.fault ? `${scenario.fault}:${scenario.probability}` : undefined;
      let kills = 0;
      let over = false;
      // whatever happens, no worker outlives its scenario (leftovers would load the machine for good)
      onTestFinished(async () => {
        over = true;
        await killAllWorkers();
      });
      worker = startWorker(fault);
      let workerSince = await headPosition();
      const inFlightAtKills: WorkInFlight[] = [];
      const supervise = (async () => {
        while (kills < KILLS_PER_SCENARIO && !over) {
          const current = worker;
          if (!current) return;
          if (!scenario.fault) {
            // no fault point: an outside SIGKILL at a moment when the worker is in the middle of its work
            // (a fixed delay after spawning mostly landed before it had even started)
            const inFlight = await eventually(
              () => workInFlight(workerSince),
              (work) => (work.handled > 0 && work.open > 0) || over || !current.alive,
              { timeoutMs: 60_000, intervalMs: 5, description: 'the worker to be in the middle of orders' },
            );
            await current.kill('SIGKILL');
            inFlightAtKills.push(inFlight);
          }
          const exit = await current.exited;
          kills += 1;
          killLog.push(`${scenario.name}: kill ${kills} (${exit.signal ?? exit.code})`);
          if (over) return;
          worker = startWorker(kills < KILLS_PER_SCENARIO ? fault : undefined);
          workerSince = await headPosition();
        }
      })();
      // orders keep coming until the worker has died often enough (a fault point needs traffic to fire)
      const commandes: string[] = [];
      for (let i = 0; i < MAX_ORDERS && (i < MIN_ORDERS || kills < KILLS_PER_SCENARIO); i++) {
        const client = clients[i % clients.length] ?? 0;
        const produit = produits[i % produits.length] ?? 0;
        commandes.push(await shop.order(client, magasin, [[produit, 1 + (i % 3)]]));
      }
      killLog.push(`${scenario.name}: ${commandes.length} orders placed`);
      // every scenario must actually crash the worker, or it proves nothing (the backlog still offers chances)
      await eventually(
        async () => kills,
        (count) => count >= KILLS_PER_SCENARIO,
        {
          timeoutMs: 60_000,
          description: `${KILLS_PER_SCENARIO} kills at ${scenario.fault ?? 'random moments'} after ${commandes.length} orders`,
        },
      );
      await supervise;
      // and each outside kill landed while the worker was at work: it had handled events since it started,
      // and orders were still open
      if (!scenario.fault) {
        expect(inFlightAtKills).toHaveLength(KILLS_PER_SCENARIO);
        for (const work of inFlightAtKills) {
          expect(work.handled).toBeGreaterThan(0);
          expect(work.open).toBeGreaterThan(0);
        }
      }

      // then every order reaches a final state
      for (const commandeId of commandes) await shop.finalCommande(commandeId, 60_000);
      // and no event was lost or applied twice: each commande's stream is gapless, each step once
      for (const commandeId of commandes) {
        const events = eventsSchema.parse((await system.api.get(`/events/?aggregate_id=${commandeId}`)).body);
        expect(events.map((event) => event.version)).toEqual(events.map((_, index) => index + 1));
        const types = events.map((event) => event.event_type);
        expect(new Set(types).size).toBe(types.length);
      }
      // and stock, balances and sales add up exactly, as recomputed from the event store
      const audit = await eventually(
        async () => auditSchema.parse((await system.api.get('/api/audit')).body),
        (report) => report.ok && report.commandes.en_cours.length === 0,
        { timeoutMs: 30_000, description: 'a clean audit with no order in flight' },
      );
      expect(audit.stock.ecarts).toEqual([]);
      // and nothing was given up on
      expect((await system.api.get('/api/dead-letters')).body).toEqual([]);
      expect(audit.argent.ecarts).toEqual([]);
    });
  }
});
