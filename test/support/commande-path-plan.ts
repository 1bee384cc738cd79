import { ACTOR_NAMES, type ActorName } from '../../src/config.js';
import { commandeMachine } from '../../src/machines/commande.machine.js';
import type { CommandeEventType, CommandePath } from '../../src/machines/commande-paths.js';

const cents = (amount: number) => Math.round(amount * 100);
const minus = (a: number, b: number) => (cents(a) - cents(b)) / 100;

const QUANTITE = 2;
const PRIX = 7.25;
/** The one order every path test places: one line, so "enough" and "short" are one number each. */
export const ORDER = { quantite: QUANTITE, prix: PRIX, total: (QUANTITE * cents(PRIX)) / 100 } as const;

/**
 * The stores as the outside sees them through the API, for the arranged magasin, produit and client:
 * the product's stock line, the client's balance, and the totals of the sales recorded for the commande.
 */
export interface Stores {
  stock: { quantite: number; reservee: number };
  solde: number;
  ventes: number[];
}

type Level = 'enough' | 'short';

/** How to make the running system emit an event next, and what that event does to the stores. */
export interface EventRecipe {
  /** The actor that emits it: running when the event is due, stopped when a path must end before it. */
  producer: ActorName;
  /** What the stores must hold at checkout for the producer to emit this event rather than its alternative. */
  requires: { stock?: Level; solde?: Level };
  /** The event's side effects, including those other services apply when they see it. */
  effect: (stores: Stores) => Stores;
  /**
   * The event happens only while the services that would move the commande on are away (a deadline
   * passing): the path is then driven step by step, each producer alone.
   */
  onlyWhileOthersAreDown?: true;
}

/**
 * The mapping from "the event a path needs next" to "how to arrange it". A new event type is a compile
 * error here; a path whose events cannot be arranged together makes `planPath` throw.
 */
export const EVENT_RECIPES: Record<CommandeEventType, EventRecipe> = {
  StockReserve: {
    producer: 'stock',
    requires: { stock: 'enough' },
    effect: (s) => ({
      ...s,
      stock: { quantite: s.stock.quantite - ORDER.quantite, reservee: s.stock.reservee + ORDER.quantite },
    }),
  },
  StockIndisponible: { producer: 'stock', requires: { stock: 'short' }, effect: (s) => s },
  PaiementAccepte: {
    producer: 'client',
    requires: { solde: 'enough' },
    effect: (s) => ({ ...s, solde: minus(s.solde, ORDER.total) }),
  },
  PaiementRefuse: { producer: 'client', requires: { solde: 'short' }, effect: (s) => s },
  // The stock service's answer to PaiementRefuse: nothing more to arrange than what led there.
  StockLibere: {
    producer: 'stock',
    requires: {},
    effect: (s) => ({
      ...s,
      stock: { quantite: s.stock.quantite + ORDER.quantite, reservee: s.stock.reservee - ORDER.quantite },
    }),
  },
  // The deadline scheduler's: the commande waited on a service longer than its deadline.
  CommandeExpiree: { producer: 'saga', requires: {}, effect: (s) => s, onlyWhileOthersAreDown: true },
  // The client service's answer to a commande that expired after it was paid.
  PaiementRembourse: {
    producer: 'client',
    requires: {},
    effect: (s) => ({ ...s, solde: (cents(s.solde) + cents(ORDER.total)) / 100 }),
  },
  // The sale is recorded with the event; the stock service then turns the reservation into a sale.
  VenteConfirmee: {
    producer: 'ventes',
    requires: {},
    effect: (s) => ({
      ...s,
      stock: { quantite: s.stock.quantite, reservee: s.stock.reservee - ORDER.quantite },
      ventes: [...s.ventes, ORDER.total],
    }),
  },
};

// "Exactly enough" on purpose: the boundary is where an off-by-one in a service would show.
const STOCK: Record<Level, number> = { enough: ORDER.quantite, short: ORDER.quantite - 1 };
const SOLDE: Record<Level, number> = { enough: ORDER.total, short: minus(ORDER.total, 0.01) };

export interface PathPlan {
  path: CommandePath;
  /** Units of the product in the store before checkout. */
  stock: number;
  /** The client's balance before checkout. */
  solde: number;
  /** The path's events, each with the actor that emits it. */
  steps: { event: CommandeEventType; producer: ActorName }[];
  /** Actors that must be down once the path is done: they would take the commande past its last state. */
  mustStop: ActorName[];
  /**
   * `running`: one system hosts every actor but `mustStop`, and the path happens on its own.
   * `stepwise`: an actor the path needs must also be down at its end (the stock service reserves, and
   * must then not release after PaiementRefuse), so each step runs with its producer alone.
   */
  mode: 'running' | 'stepwise';
  /** The stores once the path is done. */
  expected: Stores;
}

type Recipes = Partial<Record<string, EventRecipe>>;

function recipeFor(recipes: Recipes, event: string, why: string): EventRecipe {
  const recipe = recipes[event];
  if (recipe === undefined) {
    throw new Error(
      `no recipe for ${event} (${why}): add one to EVENT_RECIPES in test/support/commande-path-plan.ts ` +
        'saying which actor emits it, what the stores must hold for it, and what it changes',
    );
  }
  return recipe;
}

/** Every actor that emits some event of the machine: the ones a path test starts and stops. */
export function serviceActors(recipes: Recipes = EVENT_RECIPES): ActorName[] {
  const producers = new Set(Object.values(recipes).map((recipe) => recipe?.producer));
  return ACTOR_NAMES.filter((actor) => producers.has(actor));
}

/**
 * How to make the running system go through `path` and stop there. Throws, naming the path and the
 * events at fault, when the path cannot be arranged: a test must fail rather than skip it.
 */
export function planPath(path: CommandePath, recipes: Recipes = EVENT_RECIPES): PathPlan {
  const chosen: { stock?: { level: Level; by: string }; solde?: { level: Level; by: string } } = {};
  const steps: (PathPlan['steps'][number] & { recipe: EventRecipe })[] = [];
  for (const event of path.events) {
    const recipe = recipeFor(recipes, event, `needed by path ${path.name}`);
    steps.push({ event, producer: recipe.producer, recipe });
    for (const store of ['stock', 'solde'] as const) {
      const level = recipe.requires[store];
      if (level === undefined) continue;
      const earlier = chosen[store];
      if (earlier !== undefined && earlier.level !== level) {
        throw new Error(
          `cannot arrange path ${path.name}: ${earlier.by} needs ${store} ${earlier.level}, ` +
            `${event} needs ${store} ${level}, and the stores are arranged once, before checkout`,
        );
      }
      chosen[store] = { level, by: event };
    }
  }

  const accepted = commandeMachine.root.states[path.finalState]?.ownEvents ?? [];
  const mustStop = ACTOR_NAMES.filter((actor) =>
    accepted.some((event) => recipeFor(recipes, event, `accepted in ${path.finalState}`).producer === actor),
  );

  const initial: Stores = {
    stock: { quantite: STOCK[chosen.stock?.level ?? 'enough'], reservee: 0 },
    solde: SOLDE[chosen.solde?.level ?? 'enough'],
    ventes: [],
  };
  return {
    path,
    stock: initial.stock.quantite,
    solde: initial.solde,
    steps: steps.map(({ event, producer }) => ({ event, producer })),
    mustStop,
    mode: steps.some((step) => mustStop.includes(step.producer) || step.recipe.onlyWhileOthersAreDown)
      ? 'stepwise'
      : 'running',
    expected: steps.reduce((stores, step) => step.recipe.effect(stores), initial),
  };
}
