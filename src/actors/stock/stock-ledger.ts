import { z } from 'zod';
import type { PoolClient } from '../../persistence/database.js';

const lockedRowSchema = z.object({
  magasin_id: z.number().int(),
  produit_id: z.number().int(),
  quantite: z.number().int(),
});

/** The stock rows a transaction is about to change: lines it may reserve, commandes it may settle. */
export interface StockNeeds {
  lines: { magasinId: number; produitId: number }[];
  settling: string[];
}

const key = (magasinId: number, produitId: number) => `${magasinId}:${produitId}`;

/**
 * The stock rows one transaction of the stock service works on, locked with one statement in
 * (magasin_id, produit_id) order, the order in which every writer of several rows takes them, so that
 * concurrent transactions never deadlock; and their available quantities, kept up to date in memory as
 * the transaction reserves and releases, so that no event of the batch reads them again.
 */
export class StockLedger {
  private constructor(private readonly available: Map<string, number>) {}

  static async lock(tx: PoolClient, needs: StockNeeds): Promise<StockLedger> {
    const locked = await tx.query(
      `WITH wanted AS (
         SELECT magasin_id, produit_id FROM unnest($1::int[], $2::int[]) AS w(magasin_id, produit_id)
         UNION
         SELECT magasin_id, produit_id FROM stock_reservations
         WHERE commande_id = ANY($3::text[]) AND statut = 'reservee'
       )
       SELECT s.magasin_id, s.produit_id, s.quantite
       FROM stock AS s JOIN wanted AS w ON w.magasin_id = s.magasin_id AND w.produit_id = s.produit_id
       ORDER BY s.magasin_id, s.produit_id FOR UPDATE OF s`,
      [needs.lines.map((line) => line.magasinId), needs.lines.map((line) => line.produitId), needs.settling],
    );
    const rows = locked.rows.map((row) => lockedRowSchema.parse(row));
    return new StockLedger(new Map(rows.map((row) => [key(row.magasin_id, row.produit_id), row.quantite])));
  }

  /** 0 for a product this store does not stock. */
  availableOf(magasinId: number, produitId: number): number {
    return this.available.get(key(magasinId, produitId)) ?? 0;
  }

  /** Records a change of the available quantity that the transaction has just written. */
  adjust(magasinId: number, produitId: number, delta: number): void {
    this.available.set(key(magasinId, produitId), this.availableOf(magasinId, produitId) + delta);
  }
}
