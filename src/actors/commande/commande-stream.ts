import { TransitionRefusedError } from '../../domain/errors.js';
import {
  type NewEvent,
  parseSagaEnvelope,
  type SagaEnvelope,
  type SagaEnvelopeOf,
  type SagaEventType,
  type StoredEvent,
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
import { holdAppend, readStream, readStreams, type StreamAppend } from '../../persistence/event-store.js';

/** A commande as rehydrated from its events: what the order machine says it is now. */
export interface LoadedCommande {
  commandeId: string;
  version: number;
  snapshot: CommandeSnapshot | null;
  events: SagaEnvelope[];
}

export async function loadCommande(tx: PoolClient, commandeId: string): Promise<LoadedCommande> {
  return rehydrate(commandeId, (await readStream(tx, commandeId)).map(parseSagaEnvelope));
}

export function rehydrate(commandeId: string, events: SagaEnvelope[]): LoadedCommande {
  const { snapshot } = replayCommande(events);
  return { commandeId, version: events.at(-1)?.version ?? 0, snapshot, events };
}

/**
 * The commandes one transaction works on: read from the event store once (several at a time with
 * `preload`), and kept up to date with what the transaction appends. Appends are checked by the order
 * machine at once but written by `flush`, all in one statement, so that handling a batch of events costs
 * one read and one write of the event store instead of one of each per event.
 */
export class CommandeSession {
  private readonly loaded = new Map<string, LoadedCommande>();
  private readonly unwritten = new Map<string, StreamAppend & { events: NewEvent[] }>();

  constructor(readonly tx: PoolClient) {}

  async preload(commandeIds: readonly string[]): Promise<void> {
    const missing = [...new Set(commandeIds)].filter((id) => !this.loaded.has(id));
    if (missing.length === 0) return;
    this.seed(missing, await readStreams(this.tx, missing));
  }

  /**
   * Takes these commandes' streams, read by the caller (in version order; none for a new commande), and
   * returns them rehydrated.
   */
  seed(commandeIds: readonly string[], stored: readonly StoredEvent[]): LoadedCommande[] {
    const byCommande = new Map<string, SagaEnvelope[]>(commandeIds.map((id) => [id, []]));
    for (const event of stored.map(parseSagaEnvelope)) byCommande.get(event.aggregate_id)?.push(event);
    return [...byCommande].map(([commandeId, events]) => {
      const commande = rehydrate(commandeId, events);
      this.loaded.set(commandeId, commande);
      return commande;
    });
  }

  /** Takes commandes already rehydrated (from a `CommandeCache`). */
  adopt(commandes: Iterable<LoadedCommande>): void {
    for (const commande of commandes) this.loaded.set(commande.commandeId, commande);
  }

  async load(commandeId: string): Promise<LoadedCommande> {
    await this.preload([commandeId]);
    const commande = this.loaded.get(commandeId);
    if (!commande) throw new Error(`commande ${commandeId} could not be loaded`);
    return commande;
  }

  /**
   * The next event of a commande, at the version it was loaded at: refused at once (TransitionRefusedError)
   * when the commande's state does not take it; written with the others by `flush`.
   */
  append(commande: LoadedCommande, event: NewEvent): void {
    const { accepted, snapshot } = applyEvent(commande.snapshot, event);
    if (!accepted) {
      throw new TransitionRefusedError(
        commande.commandeId,
        event.event_type,
        statutOfCommande(commande) ?? 'inexistante',
      );
    }
    const pending = this.unwritten.get(commande.commandeId) ?? {
      aggregateId: commande.commandeId,
      expectedVersion: commande.version,
      events: [],
    };
    pending.events.push(event);
    this.unwritten.set(commande.commandeId, pending);
    this.loaded.set(commande.commandeId, { ...commande, version: commande.version + 1, snapshot });
  }

  /**
   * Writes what was appended since the last flush, with the transaction's next statement or its COMMIT,
   * provided no other writer moved those commandes since they were loaded: else that statement fails with
   * a VersionConflictError, and the transaction is rolled back.
   */
  flush(): void {
    const appends = [...this.unwritten.values()];
    this.unwritten.clear();
    holdAppend(this.tx, appends);
  }
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
