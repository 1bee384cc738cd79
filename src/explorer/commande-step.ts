import type { SagaEnvelope } from '../domain/events.js';
import { commandeMachine } from '../machines/commande.machine.js';
import {
  applyEvent,
  COMMANDE_STATUTS,
  type CommandeSnapshot,
  type CommandeStatut,
  isFinalStatut,
  statutOf,
  toMachineEvent,
} from '../machines/commande-replay.js';

/** One event folded into a commande: the state it left (null for the creation) and the state it reached. */
export interface CommandeStep {
  from: CommandeStatut | null;
  to: CommandeStatut;
  accepted: boolean;
  final: boolean;
}

function isStatut(value: string): value is CommandeStatut {
  return (COMMANDE_STATUTS as readonly string[]).includes(value);
}

/** The states whose definition accepts an event type, in definition order. */
function statesAccepting(eventType: string): CommandeStatut[] {
  return Object.values(commandeMachine.root.states)
    .filter((node) => node.transitions.has(eventType))
    .map((node) => node.key)
    .filter(isStatut);
}

/**
 * Where a commande stood before an event, when this process has not followed it from its creation: the
 * state the expiry names, or the only state that accepts that event type; null when it cannot be told.
 */
export function sourceStateOf(event: SagaEnvelope): CommandeStatut | null {
  if (event.event_type === 'CommandeCreee') return null;
  if (event.event_type === 'CommandeExpiree') return isStatut(event.data.etat) ? event.data.etat : null;
  const candidates = statesAccepting(event.event_type);
  return candidates.length === 1 ? (candidates[0] ?? null) : null;
}

function snapshotIn(statut: CommandeStatut): CommandeSnapshot {
  return commandeMachine.resolveState({ value: statut, context: { raison: null } });
}

/**
 * Folds one event into a commande with the saga's own pure step (`applyEvent`). `before` is the commande
 * as this process knows it, or undefined when it does not: its state is then inferred from the event
 * (`sourceStateOf`), and null is returned when it cannot be.
 */
export function foldCommandeStep(
  before: CommandeSnapshot | null | undefined,
  event: SagaEnvelope,
): { snapshot: CommandeSnapshot; step: CommandeStep } | null {
  let known: CommandeSnapshot | null;
  if (before !== undefined) known = before;
  else if (toMachineEvent(event) === null) known = null;
  else {
    const source = sourceStateOf(event);
    if (source === null) return null;
    known = snapshotIn(source);
  }
  const result = applyEvent(known, event);
  const to = statutOf(result.snapshot);
  return {
    snapshot: result.snapshot,
    step: {
      from: known === null ? null : statutOf(known),
      to,
      accepted: result.accepted,
      final: isFinalStatut(to),
    },
  };
}
