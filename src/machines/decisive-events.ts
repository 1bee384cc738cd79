import type { AnyStateMachine } from 'xstate';
import { commandeMachine } from './commande.machine.js';

/**
 * The event types that lead to one and the same final state from every state that accepts them (for the
 * order machine: VenteConfirmee, StockIndisponible, StockLibere), with that state. A stream whose last
 * event is one of them ended there: every append is guarded by the machine, so that event was accepted.
 * It lets a reader of many streams (the audit) tell how they ended without folding each one.
 */
export function decisiveEvents(machine: AnyStateMachine = commandeMachine): ReadonlyMap<string, string> {
  const targets = new Map<string, Set<string>>();
  for (const node of Object.values(machine.root.states)) {
    for (const definition of [...node.transitions.values()].flat()) {
      const reached = targets.get(definition.eventType) ?? new Set<string>();
      for (const target of definition.target ?? [node]) reached.add(target.key);
      targets.set(definition.eventType, reached);
    }
  }
  const decisive = new Map<string, string>();
  for (const [eventType, reached] of targets) {
    const [only] = reached;
    if (reached.size === 1 && only !== undefined && machine.root.states[only]?.type === 'final') {
      decisive.set(eventType, only);
    }
  }
  return decisive;
}
