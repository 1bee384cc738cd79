import { z } from 'zod';
import { isSagaEventType, parseSagaEnvelope, type SagaEnvelope, type StoredEvent } from '../domain/events.js';
import { toCents } from '../domain/money.js';
import { commandeMachine } from '../machines/commande.machine.js';
import { applyEvent, type CommandeStatut, replayCommande, statutOf } from '../machines/commande-replay.js';
import type { PoolClient } from '../persistence/database.js';
import { readStream } from '../persistence/event-store.js';

export const COMMANDES_PROJECTION = 'projection:commandes';

const viewRowSchema = z.object({
  statut: z.string(),
  raison: z.string().nullable(),
  version: z.number().int(),
});

/**
 * The read model behind GET /api/commandes and /events/projections: one row per commande, its state as
 * the order machine computes it, and its history. Applying an event twice changes nothing (the row
 * remembers the last version applied), so a rebuild from position 0 gives the same rows.
 */
export async function projectCommandes(tx: PoolClient, events: readonly StoredEvent[]): Promise<void> {
  for (const stored of events) {
    if (!isSagaEventType(stored.event_type)) continue;
    const event = parseSagaEnvelope(stored);
    if (event.event_type === 'CommandeCreee') {
      await insertCommande(tx, event);
    } else {
      await applyToCommande(tx, event);
    }
  }
}

async function insertCommande(tx: PoolClient, event: Extract<SagaEnvelope, { event_type: 'CommandeCreee' }>) {
  const { snapshot } = applyEvent(null, event);
  await tx.query(
    `INSERT INTO commandes_vue
       (commande_id, client_id, magasin_id, produits, total_cents, statut, raison, historique, version, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $9)
     ON CONFLICT (commande_id) DO NOTHING`,
    [
      event.aggregate_id,
      event.data.client_id,
      event.data.magasin_id,
      JSON.stringify(event.data.produits),
      toCents(event.data.total),
      statutOf(snapshot),
      JSON.stringify([{ event_type: event.event_type, timestamp: event.timestamp }]),
      event.version,
      event.timestamp,
    ],
  );
}

async function applyToCommande(tx: PoolClient, event: SagaEnvelope): Promise<void> {
  const found = await tx.query('SELECT statut, raison, version FROM commandes_vue WHERE commande_id = $1', [
    event.aggregate_id,
  ]);
  if (!found.rows[0]) return;
  const row = viewRowSchema.parse(found.rows[0]);
  if (event.version <= row.version) return;
  if (event.version > row.version + 1) {
    // Commit order can differ from version order when two writers race on one commande: fill the gap
    // from the stream itself rather than apply an event ahead of its predecessor.
    await rebuildFromStream(tx, event.aggregate_id);
    return;
  }
  const current = commandeMachine.resolveState({
    value: row.statut as CommandeStatut,
    context: { raison: row.raison },
  });
  const { snapshot } = applyEvent(current, event);
  await tx.query(
    `UPDATE commandes_vue
     SET statut = $2, raison = $3, version = $4, updated_at = $5,
         historique = historique || jsonb_build_array(jsonb_build_object('event_type', $6::text, 'timestamp', $7::text))
     WHERE commande_id = $1`,
    [
      event.aggregate_id,
      statutOf(snapshot),
      snapshot.context.raison,
      event.version,
      event.timestamp,
      event.event_type,
      event.timestamp,
    ],
  );
}

async function rebuildFromStream(tx: PoolClient, commandeId: string): Promise<void> {
  const events = (await readStream(tx, commandeId)).map(parseSagaEnvelope);
  const { snapshot } = replayCommande(events);
  const last = events.at(-1);
  if (!snapshot || !last) return;
  await tx.query(
    `UPDATE commandes_vue SET statut = $2, raison = $3, version = $4, updated_at = $5, historique = $6
     WHERE commande_id = $1`,
    [
      commandeId,
      statutOf(snapshot),
      snapshot.context.raison,
      last.version,
      last.timestamp,
      JSON.stringify(events.map(({ event_type, timestamp }) => ({ event_type, timestamp }))),
    ],
  );
}

/** Empties the read model and its checkpoint; the projection then rebuilds it from position 0. */
export async function resetCommandesProjection(tx: PoolClient): Promise<void> {
  await tx.query('DELETE FROM commandes_vue');
  await tx.query("UPDATE checkpoints SET transaction_id = '0', position = 0 WHERE name = $1", [
    COMMANDES_PROJECTION,
  ]);
}
