import { z } from 'zod';
import { NotFoundError } from '../domain/errors.js';
import { isSagaEventType, type SagaEnvelope, sagaEnvelopeSchema } from '../domain/events.js';
import { fromCents } from '../domain/money.js';
import { replayCommande, statutOf } from '../machines/commande-replay.js';
import type { Pool } from '../persistence/database.js';
import { readStream } from '../persistence/event-store.js';

const produitLineSchema = z.object({
  produit_id: z.number().int(),
  quantite: z.number().int(),
  prix_unitaire: z.number(),
  sous_total: z.number(),
});

const viewRowSchema = z.object({
  commande_id: z.string(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  produits: z.array(produitLineSchema),
  total_cents: z.number().int(),
  statut: z.string(),
  raison: z.string().nullable(),
  historique: z.array(z.object({ event_type: z.string(), timestamp: z.string() })),
  created_at: z.date(),
});

export interface CommandeView {
  commande_id: string;
  client_id: number;
  magasin_id: number;
  produits: z.infer<typeof produitLineSchema>[];
  total: number;
  statut: string;
  raison: string | null;
  historique: { event_type: string; timestamp: string }[];
  created_at: string;
}

const COLUMNS =
  'commande_id, client_id, magasin_id, produits, total_cents, statut, raison, historique, created_at';

function toView(row: unknown): CommandeView {
  const { total_cents, created_at, historique, ...rest } = viewRowSchema.parse(row);
  return {
    ...rest,
    total: fromCents(total_cents),
    created_at: created_at.toISOString(),
    historique: historique.map(({ event_type, timestamp }) => ({
      event_type,
      timestamp: new Date(timestamp).toISOString(),
    })),
  };
}

const versionsSchema = z.object({
  version: z.number().int(),
  stream_version: z.number().int().nullable(),
});

/** Queries answered from the commandes read model, never by asking the services. */
export class CommandesQueries {
  constructor(private readonly pool: Pool) {}

  async get(commandeId: string): Promise<CommandeView> {
    const result = await this.pool.query(
      `SELECT ${COLUMNS}, version,
              (SELECT max(version) FROM events WHERE aggregate_id = $1) AS stream_version
       FROM commandes_vue WHERE commande_id = $1`,
      [commandeId],
    );
    const row = result.rows[0];
    if (row !== undefined) {
      const { version, stream_version } = versionsSchema.parse(row);
      if (stream_version === null || version >= stream_version) return toView(row);
    }
    // The read model follows the store by milliseconds: a commande it does not have yet (checked out an
    // instant ago), or has behind its events, is read from the events. A 202 is never followed by a 404,
    // and a reader never sees a commande go back to an earlier state.
    const fromStore = await this.fromEventStore(commandeId);
    if (fromStore === null) throw new NotFoundError(`commande ${commandeId} not found`);
    return fromStore;
  }

  /** The view the projection will write, folded from the commande's events; null when it has none. */
  private async fromEventStore(commandeId: string): Promise<CommandeView | null> {
    const events: SagaEnvelope[] = [];
    for (const stored of await readStream(this.pool, commandeId)) {
      if (!isSagaEventType(stored.event_type)) continue;
      const parsed = sagaEnvelopeSchema.safeParse(stored);
      if (parsed.success) events.push(parsed.data);
    }
    const [created] = events;
    if (created?.event_type !== 'CommandeCreee') return null;
    const { snapshot } = replayCommande(events);
    if (snapshot === null) return null;
    return {
      commande_id: commandeId,
      client_id: created.data.client_id,
      magasin_id: created.data.magasin_id,
      produits: created.data.produits,
      total: created.data.total,
      statut: statutOf(snapshot),
      raison: snapshot.context.raison,
      historique: events.map(({ event_type, timestamp }) => ({
        event_type,
        timestamp: new Date(timestamp).toISOString(),
      })),
      created_at: new Date(created.timestamp).toISOString(),
    };
  }

  async list(filter: {
    clientId?: number | undefined;
    statut?: string | undefined;
    limit: number;
  }): Promise<CommandeView[]> {
    const result = await this.pool.query(
      `SELECT ${COLUMNS} FROM commandes_vue
       WHERE ($1::int IS NULL OR client_id = $1) AND ($2::text IS NULL OR statut = $2)
       ORDER BY created_at DESC, commande_id LIMIT $3`,
      [filter.clientId ?? null, filter.statut ?? null, filter.limit],
    );
    return result.rows.map(toView);
  }
}
