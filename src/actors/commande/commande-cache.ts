import { RecentMap } from '../../collections/recent-map.js';
import type { SagaEnvelope } from '../../domain/events.js';
import { applyEvent, isFinalStatut, statutOf } from '../../machines/commande-replay.js';
import { type LoadedCommande, rehydrate } from './commande-stream.js';

const DEFAULT_CAPACITY = 4_096;

/**
 * The commandes this process has seen lately, so that a service handling a commande's next event need not
 * read its stream back from PostgreSQL. Each entry holds committed events only, versions 1..n with no gap:
 * events read from the event store, or received from the streams, which only the relay writes, from what
 * the event store committed. Events are immutable, so an entry can be behind the store but never wrong;
 * a service appends at the entry's version, and if the commande has moved on since, the append fails as
 * a version conflict, the service forgets the commande, and handles the events again from the store.
 * Bounded: the least recently used commande goes first.
 */
export class CommandeCache {
  /** null: forgotten, to be read from the store before it is followed again. */
  private readonly entries: RecentMap<string, LoadedCommande | null>;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.entries = new RecentMap(capacity);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The commande if this process knows it up to at least `version`. */
  atLeast(commandeId: string, version: number): LoadedCommande | undefined {
    const commande = this.entries.get(commandeId);
    if (!commande || commande.version < version) return undefined;
    this.entries.set(commandeId, commande);
    return commande;
  }

  /** An event received from a stream: it extends its commande when it is the next one, else it is dropped. */
  observe(event: SagaEnvelope): void {
    const known = this.entries.get(event.aggregate_id);
    if (event.version === 1 && known === undefined) {
      this.entries.set(event.aggregate_id, rehydrate(event.aggregate_id, [event]));
      return;
    }
    if (!known || known.version !== event.version - 1) return;
    this.entries.set(event.aggregate_id, {
      commandeId: known.commandeId,
      version: event.version,
      snapshot: applyEvent(known.snapshot, event).snapshot,
      events: [...known.events, event],
    });
  }

  /** A commande as read from the event store; kept unless this process already knows a later version. */
  remember(commande: LoadedCommande): void {
    if (commande.events.length !== commande.version) {
      throw new Error(`commande ${commande.commandeId} is not its committed events alone`);
    }
    const known = this.entries.get(commande.commandeId);
    if (!known || known.version <= commande.version) this.entries.set(commande.commandeId, commande);
  }

  /**
   * Lets go of those of these commandes that reached a final state, once the events that took them there
   * are handled: nothing follows, and what the cache holds stays in the old generation of the heap, which
   * grows with it (a cache of finished commandes raised the peak RSS of a 100,000-order run by 50 MB).
   */
  releaseFinished(commandeIds: Iterable<string>): void {
    for (const commandeId of commandeIds) {
      const commande = this.entries.get(commandeId);
      if (commande?.snapshot && isFinalStatut(statutOf(commande.snapshot))) this.entries.delete(commandeId);
    }
  }

  /**
   * Drops what is known of these commandes, and follows them again only once read from the store: the
   * events that the streams deliver again (a retry, a redelivery) would rebuild the same stale state.
   */
  forget(commandeIds: Iterable<string>): void {
    for (const commandeId of commandeIds) this.entries.set(commandeId, null);
  }
}
