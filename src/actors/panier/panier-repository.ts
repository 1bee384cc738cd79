import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { fromCents } from '../../domain/money.js';
import type { Pool, PoolClient } from '../../persistence/database.js';

const articleRowSchema = z.object({
  produit_id: z.number().int(),
  quantite: z.number().int(),
  prix_cents: z.number().int(),
});

export interface PanierArticle {
  produit_id: number;
  quantite: number;
  prix_unitaire: number;
  sous_total: number;
}

export interface Panier {
  client_id: number;
  articles: PanierArticle[];
  total: number;
}

type Queryable = Pool | PoolClient;

/** Reads a cart at the catalogue's current prices, computed in cents. */
export async function readPanier(db: Queryable, clientId: number): Promise<Panier> {
  const result = await db.query(
    `SELECT a.produit_id, a.quantite, p.prix_cents
     FROM panier_articles a JOIN produits p ON p.id = a.produit_id
     WHERE a.client_id = $1 ORDER BY a.produit_id`,
    [clientId],
  );
  return toPanier(clientId, result.rows);
}

/** A cart from rows of (produit_id, quantite, prix_cents): prices and total computed in cents. */
export function toPanier(clientId: number, rows: unknown[]): Panier {
  const lines = rows.map((row) => articleRowSchema.parse(row));
  const totalCents = lines.reduce((sum, line) => sum + line.prix_cents * line.quantite, 0);
  return {
    client_id: clientId,
    articles: lines.map((line) => ({
      produit_id: line.produit_id,
      quantite: line.quantite,
      prix_unitaire: fromCents(line.prix_cents),
      sous_total: fromCents(line.prix_cents * line.quantite),
    })),
    total: fromCents(totalCents),
  };
}

export class PanierRepository {
  constructor(private readonly pool: Pool) {}

  async get(clientId: number): Promise<Panier> {
    await this.requireClient(clientId);
    return readPanier(this.pool, clientId);
  }

  /** Adds to the quantity already in the cart. */
  async addArticle(clientId: number, produitId: number, quantite: number): Promise<Panier> {
    await this.requireClient(clientId);
    const produit = await this.pool.query('SELECT 1 FROM produits WHERE id = $1', [produitId]);
    if (produit.rowCount === 0) throw new NotFoundError(`produit ${produitId} not found`);
    await this.pool.query(
      `INSERT INTO panier_articles (client_id, produit_id, quantite) VALUES ($1, $2, $3)
       ON CONFLICT (client_id, produit_id) DO UPDATE SET quantite = panier_articles.quantite + $3`,
      [clientId, produitId, quantite],
    );
    return readPanier(this.pool, clientId);
  }

  async removeArticle(clientId: number, produitId: number): Promise<Panier> {
    await this.requireClient(clientId);
    const removed = await this.pool.query(
      'DELETE FROM panier_articles WHERE client_id = $1 AND produit_id = $2',
      [clientId, produitId],
    );
    if (removed.rowCount === 0)
      throw new NotFoundError(`produit ${produitId} is not in the panier of client ${clientId}`);
    return readPanier(this.pool, clientId);
  }

  private async requireClient(clientId: number): Promise<void> {
    const client = await this.pool.query('SELECT 1 FROM clients WHERE id = $1', [clientId]);
    if (client.rowCount === 0) throw new NotFoundError(`client ${clientId} not found`);
  }
}
