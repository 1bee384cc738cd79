import { z } from 'zod';
import type { PoolClient } from '../../persistence/database.js';
import { holdStatement } from '../../persistence/statement-pipeline.js';

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

/** A line as StockReserve carries it. */
export interface ReservedLine {
  produit_id: number;
  quantite: number;
}

/**
 * The stock rows one transaction of the stock service works on, locked with one statement in
 * (magasin_id, produit_id) order, the order in which every writer of several rows takes them, so that
 * concurrent transactions never deadlock; and their available quantities, kept up to date in memory as
 * the transaction reserves and releases, so that no event of the batch reads them again. Reservations and
 * sales are written by one statement for the whole batch (`write`).
 */
export class StockLedger {
  private readonly reservations: { commandeId: string; magasinId: number; line: ReservedLine }[] = [];
  private readonly sold: string[] = [];

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

  /** Records a change of the available quantity, written by the transaction or about to be. */
  adjust(magasinId: number, produitId: number, delta: number): void {
    this.available.set(key(magasinId, produitId), this.availableOf(magasinId, produitId) + delta);
  }

  /** Takes the lines out of the available stock now; `write` records the reservation. */
  reserve(commandeId: string, magasinId: number, lines: readonly ReservedLine[]): void {
    for (const line of lines) {
      this.adjust(magasinId, line.produit_id, -line.quantite);
      this.reservations.push({ commandeId, magasinId, line });
    }
  }

  /** The commande's reserved lines become sold when `write` runs. */
  sell(commandeId: string): void {
    this.sold.push(commandeId);
  }

  /**
   * Writes the reservations and sales recorded since the last write in one statement: the reservation
   * rows, the sold ones marked, and each stock row moved once by the sum of its changes (one UPDATE may
   * change a row only once). It goes with the transaction's next statement.
   */
  write(tx: PoolClient): void {
    if (this.reservations.length === 0 && this.sold.length === 0) return;
    const reservations = this.reservations.splice(0);
    const sold = this.sold.splice(0);
    holdStatement(
      tx,
      `WITH reserved AS (
         INSERT INTO stock_reservations (commande_id, magasin_id, produit_id, quantite, statut)
         SELECT commande_id, magasin_id, produit_id, quantite, 'reservee'
         FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS r(commande_id, magasin_id, produit_id, quantite)
         RETURNING magasin_id, produit_id, quantite
       ), sold AS (
         UPDATE stock_reservations SET statut = 'vendue'
         WHERE commande_id = ANY($5::text[]) AND statut = 'reservee'
         RETURNING magasin_id, produit_id, quantite
       ), moves AS (
         SELECT magasin_id, produit_id, sum(reserved) AS reserved, sum(sold) AS sold
         FROM (
           SELECT magasin_id, produit_id, quantite AS reserved, 0 AS sold FROM reserved
           UNION ALL
           SELECT magasin_id, produit_id, 0, quantite FROM sold
         ) AS m
         GROUP BY magasin_id, produit_id
       )
       UPDATE stock AS s
       SET quantite = s.quantite - m.reserved, reservee = s.reservee + m.reserved - m.sold, vendue = s.vendue + m.sold
       FROM moves AS m
       WHERE s.magasin_id = m.magasin_id AND s.produit_id = m.produit_id`,
      [
        reservations.map((r) => r.commandeId),
        reservations.map((r) => r.magasinId),
        reservations.map((r) => r.line.produit_id),
        reservations.map((r) => r.line.quantite),
        sold,
      ],
    );
  }
}
