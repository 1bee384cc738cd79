import { NotFoundError } from '../domain/errors.js';
import { isSagaEventType, sagaEnvelopeSchema } from '../domain/events.js';
import { applyEvent, type CommandeSnapshot, statutOf } from '../machines/commande-replay.js';
import type { Pool } from '../persistence/database.js';
import { readStream } from '../persistence/event-store.js';

/** One event of a commande's stream, with the state replaying the stream up to it gives. */
export interface HistoryStep {
  position: number;
  version: number;
  event_id: string;
  event_type: string;
  source: string;
  timestamp: string;
  /** Since the commande's previous event (null for the first). */
  since_previous_ms: number | null;
  causation_id: string | null;
  /** The event of this commande that caused this one, when it is one of them. */
  caused_by_version: number | null;
  data: Record<string, unknown>;
  /** The state after folding every event up to this one through the saga's pure step. */
  statut: string | null;
  /** Whether the machine accepted this event (an unaccepted one leaves the state as it was). */
  accepted: boolean;
}

export interface CommandeHistory {
  /** Whose commande it is, as its creation says (null when its stream holds no valid creation). */
  clientId: number | null;
  steps: HistoryStep[];
}

/**
 * A commande's events in version order, each with the state that rehydration computes after it: the same
 * pure fold (`applyEvent`) the saga and the read model use, so stepping through it shows what they see.
 */
export async function commandeHistory(pool: Pool, commandeId: string): Promise<CommandeHistory> {
  const events = await readStream(pool, commandeId);
  if (events.length === 0) throw new NotFoundError(`commande ${commandeId} not found`);
  let clientId: number | null = null;
  const versionOfEventId = new Map(events.map((event) => [event.event_id, event.version]));
  let snapshot: CommandeSnapshot | null = null;
  let previousMs: number | null = null;
  const steps = events.map((event) => {
    let accepted = false;
    if (isSagaEventType(event.event_type)) {
      const parsed = sagaEnvelopeSchema.safeParse(event);
      if (parsed.success) {
        if (parsed.data.event_type === 'CommandeCreee') clientId ??= parsed.data.data.client_id;
        const result = applyEvent(snapshot, parsed.data);
        snapshot = result.snapshot;
        accepted = result.accepted;
      }
    }
    const atMs = Date.parse(event.timestamp);
    const step: HistoryStep = {
      position: event.position,
      version: event.version,
      event_id: event.event_id,
      event_type: event.event_type,
      source: event.source,
      timestamp: event.timestamp,
      since_previous_ms: previousMs === null ? null : atMs - previousMs,
      causation_id: event.causation_id,
      caused_by_version:
        event.causation_id === null ? null : (versionOfEventId.get(event.causation_id) ?? null),
      data: event.data,
      statut: snapshot === null ? null : statutOf(snapshot),
      accepted,
    };
    previousMs = atMs;
    return step;
  });
  return { clientId, steps };
}
