import { TransitionRefusedError } from '../../domain/errors.js';
import {
  type NewEvent,
  parseSagaEnvelope,
  type SagaEnvelope,
  type SagaEnvelopeOf,
  type SagaEventType,
} from '../../domain/events.js';
import {
  applyEvent,
  type CommandeSnapshot,
  type CommandeStatut,
  machineEventOfType,
  replayCommande,
  statutOf,
} from '../../machines/commande-replay.js';
import type { PoolClient } from '../../persistence/database.js';
import { appendToStream, readStream } from '../../persistence/event-store.js';

/** A commande as rehydrated from its events: what the order machine says it is now. */
export interface LoadedCommande {
  commandeId: string;
  version: number;
  snapshot: CommandeSnapshot | null;
  events: SagaEnvelope[];
}

export async function loadCommande(tx: PoolClient, commandeId: string): Promise<LoadedCommande> {
  const events = (await readStream(tx, commandeId)).map(parseSagaEnvelope);
  const { snapshot } = replayCommande(events);
  return { commandeId, version: events.at(-1)?.version ?? 0, snapshot, events };
}

/** The event that created the commande: what every later step can rely on (store, client, lines). */
export function creationOf(commande: LoadedCommande): SagaEnvelopeOf<'CommandeCreee'> {
  const first = commande.events[0];
  if (first?.event_type !== 'CommandeCreee') {
    throw new Error(`commande ${commande.commandeId} does not start with CommandeCreee`);
  }
  return first;
}

export function statutOfCommande(commande: LoadedCommande): CommandeStatut | null {
  return commande.snapshot ? statutOf(commande.snapshot) : null;
}

export function commandeAccepts(
  commande: LoadedCommande,
  eventType: Exclude<SagaEventType, 'CommandeCreee'>,
): boolean {
  return commande.snapshot?.can(machineEventOfType(eventType)) ?? false;
}

/** Stops a handler before it changes anything when the commande's state does not take this event. */
export function assertCommandeAccepts(
  commande: LoadedCommande,
  eventType: Exclude<SagaEventType, 'CommandeCreee'>,
): void {
  if (!commandeAccepts(commande, eventType)) {
    throw new TransitionRefusedError(
      commande.commandeId,
      eventType,
      statutOfCommande(commande) ?? 'inexistante',
    );
  }
}

/**
 * Appends the next event of a commande, at the version it was loaded at. The order machine guards the
 * append: an event its current state refuses is never stored, and a concurrent writer makes this one
 * fail with a version conflict, to be retried from a fresh load.
 */
export async function appendToCommande(
  tx: PoolClient,
  commande: LoadedCommande,
  event: NewEvent,
): Promise<SagaEnvelope> {
  const { accepted } = applyEvent(commande.snapshot, event);
  if (!accepted) {
    throw new TransitionRefusedError(
      commande.commandeId,
      event.event_type,
      statutOfCommande(commande) ?? 'inexistante',
    );
  }
  const [stored] = await appendToStream(tx, commande.commandeId, commande.version, [event]);
  if (!stored) throw new Error(`append to ${commande.commandeId} returned nothing`);
  return parseSagaEnvelope(stored);
}
