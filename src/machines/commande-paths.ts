import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import { type CommandeContext, type CommandeMachineEvent, commandeMachine } from './commande.machine.js';
import type { CommandeSnapshot, CommandeStatut } from './commande-replay.js';

export type CommandeEventType = CommandeMachineEvent['type'];

/**
 * One event of each type the machine knows, payload included: without the payloads a traversal
 * would not try those events. The mapped type makes a new event type a compile error here.
 */
export const SAMPLE_COMMANDE_EVENTS: {
  [K in CommandeEventType]: Extract<CommandeMachineEvent, { type: K }>;
} = {
  StockReserve: { type: 'StockReserve' },
  StockIndisponible: { type: 'StockIndisponible', raison: 'stock_insuffisant' },
  PaiementAccepte: { type: 'PaiementAccepte' },
  PaiementRefuse: { type: 'PaiementRefuse', raison: 'solde_insuffisant' },
  StockLibere: { type: 'StockLibere' },
  VenteConfirmee: { type: 'VenteConfirmee' },
  CommandeExpiree: { type: 'CommandeExpiree', raison: 'delai_depasse' },
  PaiementRembourse: { type: 'PaiementRembourse' },
};

/** A way through the order machine, from CommandeCreee to `finalState`. */
export interface CommandePath {
  /** The event sequence, e.g. `CommandeCreee → StockReserve → PaiementRefuse → StockLibere ⇒ annulee`. */
  name: string;
  /** Event types after CommandeCreee (which creates the commande and is not a machine event). */
  events: CommandeEventType[];
  /** The same events with the payloads the traversal sent. */
  machineEvents: CommandeMachineEvent[];
  /** Every state visited, from en_attente_stock to `finalState`. */
  states: CommandeStatut[];
  finalState: CommandeStatut;
  finalContext: CommandeContext;
}

function toCommandePath(steps: { event: CommandeMachineEvent; state: CommandeSnapshot }[]): CommandePath {
  // The first step is the machine's own `xstate.init`; the commande's is CommandeCreee.
  const [initial, ...rest] = steps;
  if (initial === undefined) throw new Error('a path has at least its initial step');
  const last = rest.at(-1) ?? initial;
  const events = rest.map((step) => step.event.type);
  return {
    name: `${['CommandeCreee', ...events].join(' → ')} ⇒ ${last.state.value}`,
    events,
    machineEvents: rest.map((step) => step.event),
    states: steps.map((step) => step.state.value),
    finalState: last.state.value,
    finalContext: last.state.context,
  };
}

/**
 * Every path of the order machine worth testing: the shortest path to each state, then every simple
 * path (no state visited twice), without duplicates. Deterministic, in machine definition order.
 */
export function commandePaths(): CommandePath[] {
  const options = {
    events: Object.values(SAMPLE_COMMANDE_EVENTS),
    // The context would make every distinct `raison` a new vertex; the state is what a path is about.
    serializeState: (snapshot: CommandeSnapshot) => JSON.stringify(snapshot.value),
  };
  const all = [...getShortestPaths(commandeMachine, options), ...getSimplePaths(commandeMachine, options)];
  const byName = new Map<string, CommandePath>();
  for (const path of all) {
    const commandePath = toCommandePath(path.steps);
    if (!byName.has(commandePath.name)) byName.set(commandePath.name, commandePath);
  }
  return [...byName.values()];
}
