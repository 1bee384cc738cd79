import { z } from 'zod';
import { fromCents } from '../../domain/money.js';
import type { Pool } from '../../persistence/database.js';

const venteRowSchema = z.object({
  id: z.number().int(),
  commande_id: z.string(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  total_cents: z.number().int(),
  date: z.date(),
});

export interface Vente {
  id: number;
  commande_id: string;
  client_id: number;
  magasin_id: number;
  total: number;
  date: string;
}

export class VentesRepository {
  constructor(private readonly pool: Pool) {}

  async list(): Promise<Vente[]> {
    const result = await this.pool.query(
      'SELECT id, commande_id, client_id, magasin_id, total_cents, date FROM ventes ORDER BY id',
    );
    return result.rows.map((row) => {
      const { total_cents, date, ...rest } = venteRowSchema.parse(row);
      return { ...rest, total: fromCents(total_cents), date: date.toISOString() };
    });
  }
}
