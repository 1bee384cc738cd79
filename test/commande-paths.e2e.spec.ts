import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Choreo } from '../src/app.js';
import { ACTOR_NAMES, type ActorName, type BusKind, type Config } from '../src/config.js';
import { commandeMachine } from '../src/machines/commande.machine.js';
import { type CommandePath, commandePaths } from '../src/machines/commande-paths.js';
import { definedTransitions, transitionsTaken } from '../src/machines/machine-transitions.js';
import { describeOnEachBus } from './support/buses.js';
import {
  EVENT_RECIPES,
  ORDER,
  type PathPlan,
  planPath,
  type Stores,
  serviceActors,
} from './support/commande-path-plan.js';
import { fetchDiagramme, highlightedStates } from './support/diagramme.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/*
 * Model-based tests on the running system: every path the order machine allows (commandePaths(), the
 * same list the unit suite replays) is made to happen for real, over HTTP, and checked against the
 * machine and the stores. A new state or transition brings its tests with it; a path that cannot be
 * arranged fails with a message that says why.
 */

const paths = commandePaths();
console.log(`commande machine on the running system: ${paths.length} paths`);

const WAIT = { timeoutMs: 30_000, intervalMs: 50 };
const venteList = z.array(z.object({ commande_id: z.string(), total: z.number() }));
const eventList = z.array(z.object({ event_type: z.string() }));

/**
 * One TestSystem (database + Redis prefix) per actor set, on the bus of the describe block, started when a path first needs it and
 * reused by the next paths that need the same set.
 */
class Systems {
  private readonly started = new Map<string, Promise<TestSystem>>();

  constructor(private readonly bus: BusKind) {}

  hosting(actors: ActorName[], label: string, config: Partial<Config> = {}): Promise<TestSystem> {
    let system = this.started.get(label);
    if (system === undefined) {
      system = TestSystem.start(label, { bus: this.bus, actors, config });
      this.started.set(label, system);
    }
    return system;
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.started.values()].map(async (system) => (await system).stop()));
  }
}

interface Arranged {
  magasin: number;
  produit: number;
  client: number;
}

async function arrange(shop: Shop, plan: PathPlan): Promise<Arranged> {
  const magasin = await shop.magasin();
  const produit = await shop.produit(ORDER.prix);
  await shop.setStock(magasin, produit, plan.stock);
  const client = await shop.client(plan.solde);
  return { magasin, produit, client };
}

async function historyOf(shop: Shop, commandeId: string): Promise<string[]> {
  return (await shop.commande(commandeId)).historique.map((entry) => entry.event_type);
}

/** Waits until the read model has recorded `count` events of the commande (CommandeCreee included). */
function untilHistoryHas(shop: Shop, commandeId: string, count: number, what: string): Promise<string[]> {
  return eventually(
    () => historyOf(shop, commandeId),
    (history) => history.length >= count,
    { ...WAIT, description: `commande ${commandeId} to record ${what}` },
  );
}

async function observeStores(shop: Shop, arranged: Arranged, commandeId: string): Promise<Stores> {
  const { quantite, reservee } = await shop.stockOf(arranged.magasin, arranged.produit);
  const ventes = venteList.parse((await shop.api.get('/api/ventes')).body);
  return {
    stock: { quantite, reservee },
    solde: await shop.solde(arranged.client),
    ventes: ventes.filter((vente) => vente.commande_id === commandeId).map((vente) => vente.total),
  };
}

interface Drive {
  system: TestSystem;
  shop: Shop;
  arranged: Arranged;
  commandeId: string;
  /** Stops what the drive left running for this path only. */
  release: () => Promise<void>;
}

/** Places the order on a system that hosts every actor but the ones that must stay down. */
async function driveRunning(systems: Systems, plan: PathPlan): Promise<Drive> {
  const label = `paths_without_${plan.mustStop.join('_') || 'none'}`;
  const system = await systems.hosting(
    ACTOR_NAMES.filter((actor) => !plan.mustStop.includes(actor)),
    label,
  );
  const shop = new Shop(system.api);
  const arranged = await arrange(shop, plan);
  const commandeId = await shop.order(arranged.client, arranged.magasin, [
    [arranged.produit, ORDER.quantite],
  ]);
  await untilHistoryHas(shop, commandeId, plan.path.events.length + 1, `every event of ${plan.path.name}`);
  return { system, shop, arranged, commandeId, release: async () => {} };
}

/**
 * Places the order on a system that hosts no service, then starts each step's producer alone and stops
 * it once its event is recorded. At the end, the services the last state does not need to keep away
 * run again, so the side effects that follow the last event (if any) happen as they would in production.
 */
async function driveStepwise(systems: Systems, plan: PathPlan): Promise<Drive> {
  const services = serviceActors();
  const system = await systems.hosting(
    ACTOR_NAMES.filter((actor) => !services.includes(actor)),
    'paths_stepwise',
    // Short, so that a commande left alone with the saga actor expires within the test.
    { sagaDeadlineMs: 300 },
  );
  const shop = new Shop(system.api);
  const arranged = await arrange(shop, plan);
  const commandeId = await shop.order(arranged.client, arranged.magasin, [
    [arranged.produit, ORDER.quantite],
  ]);
  await untilHistoryHas(shop, commandeId, 1, 'CommandeCreee');
  for (const [i, { event, producer }] of plan.steps.entries()) {
    const node = await system.addNode([producer]);
    try {
      await untilHistoryHas(shop, commandeId, i + 2, `${event}, from the ${producer} actor alone`);
    } finally {
      await system.stopNode(node);
    }
  }
  const after = services.filter((actor) => !plan.mustStop.includes(actor));
  const rest: Choreo | null = after.length > 0 ? await system.addNode(after) : null;
  return {
    system,
    shop,
    arranged,
    commandeId,
    release: async () => {
      if (rest) await system.stopNode(rest);
    },
  };
}

describeOnEachBus(
  `commande machine on the running system: ${paths.length} paths, each driven over HTTP`,
  (bus) => {
    const systems = new Systems(bus);
    afterAll(() => systems.stopAll());

    for (const path of paths) {
      it(path.name, { timeout: 180_000 }, async () => {
        // given the stores arranged so that each next event is the one the path needs,
        // and the actors that would take the commande past its last state kept down
        const plan = planPath(path);
        const drive =
          plan.mode === 'running' ? await driveRunning(systems, plan) : await driveStepwise(systems, plan);
        const { system, shop, arranged, commandeId } = drive;
        try {
          // then nothing that could take the commande further is running: where it is now, it stays
          const running = system.nodes.flatMap((node) => plan.mustStop.filter((actor) => node.hosts(actor)));
          expect(running).toEqual([]);

          // and the commande went through exactly the path's events, and rests in its last state
          const commande = await shop.commande(commandeId);
          expect(commande.historique.map((entry) => entry.event_type)).toEqual([
            'CommandeCreee',
            ...path.events,
          ]);
          expect(commande.statut).toBe(path.finalState);
          expect(commande.raison).toBe(path.finalContext.raison);
          const stored = eventList.parse((await system.api.get(`/events/?aggregate_id=${commandeId}`)).body);
          expect(stored.map((event) => event.event_type)).toEqual(['CommandeCreee', ...path.events]);

          // and the stores show the path's side effects, no more, no less
          const stores = await eventually(
            () => observeStores(shop, arranged, commandeId),
            (seen) => isDeepStrictEqual(seen, plan.expected),
            { ...WAIT, description: `the stores to show ${JSON.stringify(plan.expected)}` },
          ).catch(() => observeStores(shop, arranged, commandeId));
          expect(stores).toEqual(plan.expected);

          // and support's diagram points at that state
          const diagramme = await fetchDiagramme(system.api, commandeId);
          expect(highlightedStates(diagramme.text)).toEqual([path.finalState]);
        } finally {
          await drive.release();
        }
      });
    }
  },
);

describe('the system-level paths cover the whole order machine', () => {
  // Planned inside each test: a path that cannot be arranged fails its own test above, not the collection.
  const plannedPaths = () => paths.map((path) => planPath(path).path);

  it('visits every state, and rests in each one at the end of some path', () => {
    const planned = plannedPaths();
    const states = Object.keys(commandeMachine.root.states);
    const visited = new Set<string>(planned.flatMap((path) => path.states));
    const restedIn = new Set<string>(planned.map((path) => path.finalState));
    expect(states.filter((state) => !visited.has(state))).toEqual([]);
    expect(states.filter((state) => !restedIn.has(state))).toEqual([]);
  });

  it('takes every transition of the machine', () => {
    const taken = new Set(plannedPaths().flatMap(transitionsTaken));
    const defined = definedTransitions(commandeMachine);
    expect(defined.length).toBeGreaterThan(0);
    expect(defined.filter((transition) => !taken.has(transition))).toEqual([]);
  });

  it('keeps down exactly the actors that would move a commande past where its path ends', () => {
    const planFor = (state: string) => {
      const path = paths.find((candidate) => candidate.finalState === state);
      if (path === undefined) throw new Error(`no path ends in ${state}`);
      const { mode, mustStop } = planPath(path);
      return { mode, mustStop };
    };
    // Nothing moves a commande out of a final state; out of en_attente_stock, the stock service would,
    // and so would the saga actor's deadline.
    expect(planFor('vente_confirmee')).toEqual({ mode: 'running', mustStop: [] });
    expect(planFor('en_attente_stock')).toEqual({ mode: 'running', mustStop: ['stock', 'saga'] });
    // The stock service reserves on the way there, and would release the stock once there.
    expect(planFor('paiement_refuse')).toEqual({ mode: 'stepwise', mustStop: ['stock'] });
  });

  it('refuses loudly a path whose events cannot be arranged together', () => {
    const impossible: CommandePath = {
      name: 'CommandeCreee → StockReserve → StockIndisponible ⇒ stock_indisponible',
      events: ['StockReserve', 'StockIndisponible'],
      machineEvents: [{ type: 'StockReserve' }, { type: 'StockIndisponible', raison: 'stock_insuffisant' }],
      states: ['en_attente_stock', 'stock_reserve', 'stock_indisponible'],
      finalState: 'stock_indisponible',
      finalContext: { raison: 'stock_insuffisant' },
    };
    expect(() => planPath(impossible)).toThrow(
      /cannot arrange path .*StockReserve needs stock enough, StockIndisponible needs stock short/,
    );
  });

  it('refuses loudly an event nobody said how to arrange', () => {
    const { VenteConfirmee: _, ...withoutVente } = EVENT_RECIPES;
    const toVente = paths.find((path) => path.events.includes('VenteConfirmee'));
    if (toVente === undefined) throw new Error('the machine has a path through VenteConfirmee');
    expect(() => planPath(toVente, withoutVente)).toThrow(/no recipe for VenteConfirmee .*EVENT_RECIPES/);
  });
});
