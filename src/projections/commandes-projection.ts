import { z } from 'zod';
import {
  isSagaEventType,
  type SagaEnvelope,
  type StoredEvent,
  sagaEnvelopeSchema,
} from '../domain/events.js';
import { toCents } from '../domain/money.js';
import { commandeMachine } from '../machines/commande.machine.js';
import {
  applyEvent,
  type CommandeSnapshot,
  type CommandeStatut,
  initialCommandeSnapshot,
  statutOf,
} from '../machines/commande-replay.js';
import type { PoolClient } from '../persistence/database.js';
import { holdStatement } from '../persistence/statement-pipeline.js';

export const COMMANDES_PROJECTION = 'projection:commandes';

const viewRowSchema = z.object({
  commande_id: z.string(),
  statut: z.string(),
  raison: z.string().nullable(),
  version: z.number().int(),
});

/**
 * The read model behind GET /api/commandes and /events/projections: one row per commande, its state as
 * the order machine computes it, and its history. Applying an event twice changes nothing (the row
 * remembers the last version applied), so a rebuild from position 0 gives the same rows.
 *
 * A batch costs at most three statements whatever its size: the new commandes inserted together, the
 * rows the other events touch read together, then updated together with every event of the batch folded
 * in, in version order. The writes are held: the insert goes with the read, the update with the
 * checkpoint's move and the COMMIT. An event that cannot be decoded is passed over and reported.
 */
export async function projectCommandes(
  tx: PoolClient,
  events: readonly StoredEvent[],
  onUndecodable: (event: StoredEvent, reason: string) => void = () => {},
): Promise<void> {
  const created: Extract<SagaEnvelope, { event_type: 'CommandeCreee' }>[] = [];
  const later: SagaEnvelope[] = [];
  for (const stored of events) {
    if (!isSagaEventType(stored.event_type)) continue;
    const parsed = sagaEnvelopeSchema.safeParse(stored);
    if (!parsed.success) {
      // A row no actor could have written (the consumers dead-letter it): stopping here would stop the
      // read model for good.
      onUndecodable(stored, parsed.error.message);
      continue;
    }
    const event = parsed.data;
    if (event.event_type === 'CommandeCreee') created.push(event);
    else later.push(event);
  }
  if (created.length > 0) insertCommandes(tx, created);
  if (later.length > 0) await applyToCommandes(tx, later);
}

/** Held (`holdStatement`): the read of the rows that other events touch takes it along, and sees it. */
function insertCommandes(
  tx: PoolClient,
  events: readonly Extract<SagaEnvelope, { event_type: 'CommandeCreee' }>[],
): void {
  const statut = statutOf(initialCommandeSnapshot());
  holdStatement(
    tx,
    `INSERT INTO commandes_vue
       (commande_id, client_id, magasin_id, produits, total_cents, statut, raison, historique, version, created_at, updated_at)
     SELECT c.commande_id, c.client_id, c.magasin_id, c.produits, c.total_cents, $6, NULL,
            jsonb_build_array(jsonb_build_object('event_type', 'CommandeCreee', 'timestamp', c.at)),
            c.version, c.at::timestamptz, c.at::timestamptz
     FROM unnest($1::text[], $2::int[], $3::int[], $4::jsonb[], $5::bigint[], $7::int[], $8::text[])
            AS c(commande_id, client_id, magasin_id, produits, total_cents, version, at)
     ON CONFLICT (commande_id) DO NOTHING`,
    [
      events.map((event) => event.aggregate_id),
      events.map((event) => event.data.client_id),
      events.map((event) => event.data.magasin_id),
      events.map((event) => JSON.stringify(event.data.produits)),
      events.map((event) => toCents(event.data.total)),
      statut,
      events.map((event) => event.version),
      events.map((event) => event.timestamp),
    ],
  );
}

interface ViewChange {
  snapshot: CommandeSnapshot;
  version: number;
  updatedAt: string;
  history: { event_type: string; timestamp: string }[];
}

async function applyToCommandes(tx: PoolClient, events: readonly SagaEnvelope[]): Promise<void> {
  const ids = [...new Set(events.map((event) => event.aggregate_id))].sort();
  const found = await tx.query(
    'SELECT commande_id, statut, raison, version FROM commandes_vue WHERE commande_id = ANY($1::text[])',
    [ids],
  );
  const changes = new Map<string, ViewChange>();
  for (const row of found.rows) {
    const view = viewRowSchema.parse(row);
    const snapshot = commandeMachine.resolveState({
      value: view.statut as CommandeStatut,
      context: { raison: view.raison },
    });
    changes.set(view.commande_id, { snapshot, version: view.version, updatedAt: '', history: [] });
  }
  for (const event of [...events].sort((a, b) => a.version - b.version)) {
    const change = changes.get(event.aggregate_id);
    if (!change || event.version <= change.version) continue;
    change.snapshot = applyEvent(change.snapshot, event).snapshot;
    change.version = event.version;
    change.updatedAt = event.timestamp;
    change.history.push({ event_type: event.event_type, timestamp: event.timestamp });
  }
  const touched = [...changes.entries()].filter(([, change]) => change.history.length > 0);
  if (touched.length === 0) return;
  holdStatement(
    tx,
    `UPDATE commandes_vue AS v
     SET statut = u.statut, raison = u.raison, version = u.version, updated_at = u.updated_at::timestamptz,
         historique = v.historique || u.history
     FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[])
            AS u(commande_id, statut, raison, version, updated_at, history)
     WHERE v.commande_id = u.commande_id`,
    [
      touched.map(([id]) => id),
      touched.map(([, change]) => statutOf(change.snapshot)),
      touched.map(([, change]) => change.snapshot.context.raison),
      touched.map(([, change]) => change.version),
      touched.map(([, change]) => change.updatedAt),
      touched.map(([, change]) => JSON.stringify(change.history)),
    ],
  );
}
