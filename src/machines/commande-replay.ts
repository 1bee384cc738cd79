import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import { isSagaEventType, type SagaEventPayload, type SagaEventType } from '../domain/events.js';
import { type CommandeMachineEvent, commandeMachine } from './commande.machine.js';

export type CommandeSnapshot = SnapshotFrom<typeof commandeMachine>;

export const COMMANDE_STATUTS = [
  'en_attente_stock',
  'stock_reserve',
  'stock_indisponible',
  'paiement_accepte',
  'paiement_refuse',
  'annulee',
  'vente_confirmee',
  'remboursement',
  'liberation_stock',
] as const;
export type CommandeStatut = (typeof COMMANDE_STATUTS)[number];

export function statutOf(snapshot: CommandeSnapshot): CommandeStatut {
  return snapshot.value;
}

/** The event that creates a commande enters the initial state; every other one is a machine event. */
export function toMachineEvent(event: SagaEventPayload): CommandeMachineEvent | null {
  switch (event.event_type) {
    case 'CommandeCreee':
      return null;
    case 'StockIndisponible':
    case 'PaiementRefuse':
    case 'CommandeExpiree':
      return { type: event.event_type, raison: event.data.raison };
    case 'PaiementRembourse':
    case 'StockReserve':
    case 'PaiementAccepte':
    case 'StockLibere':
    case 'VenteConfirmee':
      return { type: event.event_type };
    default: {
      const unreachable: never = event;
      throw new Error(`unknown saga event ${JSON.stringify(unreachable)}`);
    }
  }
}

/** A machine event for an event type, when only the type is known (e.g. to ask "would it be accepted?"). */
export function machineEventOfType(eventType: Exclude<SagaEventType, 'CommandeCreee'>): CommandeMachineEvent {
  switch (eventType) {
    case 'StockIndisponible':
    case 'PaiementRefuse':
    case 'CommandeExpiree':
      return { type: eventType, raison: '' };
    default:
      return { type: eventType };
  }
}

let initialSnapshot: CommandeSnapshot | null = null;

export function initialCommandeSnapshot(): CommandeSnapshot {
  initialSnapshot ??= initialTransition(commandeMachine)[0];
  return initialSnapshot;
}

export interface FoldResult {
  snapshot: CommandeSnapshot;
  /** Whether the machine accepted the event; an unaccepted event leaves the snapshot as it was. */
  accepted: boolean;
}

/**
 * A commande's snapshot is all in its state and its context ({ raison }): no child actor, no history, no
 * timer. So a step depends only on (state, raison, event), and the few distinct steps are computed by
 * XState once and then reused; snapshots are never mutated, sharing them is safe. Bounded, in case
 * reasons were ever free text.
 */
const MAX_MEMOIZED_STEPS = 1_000;
const memoizedSteps = new Map<string, CommandeSnapshot | null>();

function step(snapshot: CommandeSnapshot, event: CommandeMachineEvent): CommandeSnapshot | null {
  const key = JSON.stringify([
    snapshot.value,
    snapshot.context.raison,
    event.type,
    'raison' in event ? event.raison : null,
  ]);
  const known = memoizedSteps.get(key);
  if (known !== undefined) return known;
  const next = snapshot.can(event) ? transition(commandeMachine, snapshot, event)[0] : null;
  if (memoizedSteps.size >= MAX_MEMOIZED_STEPS) memoizedSteps.clear();
  memoizedSteps.set(key, next);
  return next;
}

/** One pure step: nothing runs, no timer starts, nothing is published. */
export function applyEvent(snapshot: CommandeSnapshot | null, event: SagaEventPayload): FoldResult {
  const machineEvent = toMachineEvent(event);
  if (machineEvent === null) {
    return snapshot === null
      ? { snapshot: initialCommandeSnapshot(), accepted: true }
      : { snapshot, accepted: false };
  }
  if (snapshot === null) return { snapshot: initialCommandeSnapshot(), accepted: false };
  const next = step(snapshot, machineEvent);
  return next === null ? { snapshot, accepted: false } : { snapshot: next, accepted: true };
}

export interface ReplayResult {
  snapshot: CommandeSnapshot | null;
  rejected: { event_type: SagaEventType; version: number }[];
}

/** Rehydrates a commande by folding its events, in version order, through the pure transitions. */
export function replayCommande(events: readonly (SagaEventPayload & { version: number })[]): ReplayResult {
  let snapshot: CommandeSnapshot | null = null;
  const rejected: ReplayResult['rejected'] = [];
  for (const event of events) {
    const result = applyEvent(snapshot, event);
    if (!result.accepted) rejected.push({ event_type: event.event_type, version: event.version });
    snapshot = result.snapshot;
  }
  return { snapshot, rejected };
}

/**
 * The state reached by a sequence of event types alone (payloads do not decide transitions), or null
 * when it does not start with CommandeCreee. Events the machine refuses are skipped, as in replay.
 */
export function statutFromEventTypes(eventTypes: readonly string[]): CommandeStatut | null {
  if (eventTypes[0] !== 'CommandeCreee') return null;
  let snapshot = initialCommandeSnapshot();
  for (const eventType of eventTypes.slice(1)) {
    if (!isSagaEventType(eventType) || eventType === 'CommandeCreee') continue;
    const event = machineEventOfType(eventType);
    if (snapshot.can(event)) [snapshot] = transition(commandeMachine, snapshot, event);
  }
  return statutOf(snapshot);
}

export function isFinalStatut(statut: CommandeStatut): boolean {
  return commandeMachine.states[statut]?.type === 'final';
}
