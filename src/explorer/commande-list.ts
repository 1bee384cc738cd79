import { z } from 'zod';
import { fromCents } from '../domain/money.js';
import type { Pool } from '../persistence/database.js';

export interface CommandeListFilter {
  statut?: string | undefined;
  clientId?: number | undefined;
  magasinId?: number | undefined;
  /** Part of a commande id. */
  search?: string | undefined;
  limit: number;
}

export interface CommandeListRow {
  commande_id: string;
  client_id: number;
  magasin_id: number;
  total: number;
  statut: string;
  raison: string | null;
  created_at: string;
  updated_at: string;
}

const rowSchema = z.object({
  commande_id: z.string(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  total_cents: z.coerce.number().int(),
  statut: z.string(),
  raison: z.string().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
});

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/** The commandes of the read model, newest first (index of migration 010), filtered as the explorer asks. */
export async function listCommandes(pool: Pool, filter: CommandeListFilter): Promise<CommandeListRow[]> {
  const result = await pool.query(
    `SELECT commande_id, client_id, magasin_id, total_cents, statut, raison, created_at, updated_at
       FROM commandes_vue
      WHERE ($1::text IS NULL OR statut = $1)
        AND ($2::int IS NULL OR client_id = $2)
        AND ($3::int IS NULL OR magasin_id = $3)
        AND ($4::text IS NULL OR commande_id ILIKE '%' || $4 || '%')
      ORDER BY created_at DESC, commande_id DESC
      LIMIT $5`,
    [
      filter.statut ?? null,
      filter.clientId ?? null,
      filter.magasinId ?? null,
      filter.search === undefined ? null : escapeLike(filter.search),
      filter.limit,
    ],
  );
  return result.rows.map((raw) => {
    const { total_cents, created_at, updated_at, ...row } = rowSchema.parse(raw);
    return {
      ...row,
      total: fromCents(total_cents),
      created_at: created_at.toISOString(),
      updated_at: updated_at.toISOString(),
    };
  });
}
