import type { SagaEnvelope } from '../domain/events.js';
import type { CommandeStep } from './commande-step.js';

/** What the explorer's pages are told of one event of a commande, as it is appended. */
export interface CommandeChange {
  position: number;
  commande_id: string;
  event_type: string;
  version: number;
  timestamp: string;
  /** The state before (null at creation, or when it cannot be told) and after the event. */
  from: string | null;
  statut: string | null;
  final: boolean;
  /** Set on creation, so that a list can show (and filter) a new commande without asking. */
  client_id: number | null;
  magasin_id: number | null;
  total: number | null;
}

export function commandeChangeOf(event: SagaEnvelope, step: CommandeStep | null): CommandeChange {
  const created = event.event_type === 'CommandeCreee' ? event.data : null;
  return {
    position: event.position,
    commande_id: event.aggregate_id,
    event_type: event.event_type,
    version: event.version,
    timestamp: event.timestamp,
    from: step?.from ?? null,
    statut: step?.to ?? null,
    final: step?.final ?? false,
    client_id: created?.client_id ?? null,
    magasin_id: created?.magasin_id ?? null,
    total: created?.total ?? null,
  };
}
