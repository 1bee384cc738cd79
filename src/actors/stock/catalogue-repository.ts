import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { fromCents, toCents } from '../../domain/money.js';
import { type Pool, pgErrorCode, withTransaction } from '../../persistence/database.js';
import { appendToStream, streamVersion } from '../../persistence/event-store.js';

const magasinRowSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  adresse: z.string().nullable(),
  ville: z.string().nullable(),
});
export type Magasin = z.infer<typeof magasinRowSchema>;

const produitRowSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  categorie: z.string().nullable(),
  prix_cents: z.number().int(),
});
export interface Produit {
  id: number;
  nom: string;
  categorie: string | null;
  prix: number;
}

const stockRowSchema = z.object({
  magasin_id: z.number().int(),
  produit_id: z.number().int(),
  quantite: z.number().int(),
  reservee: z.number().int(),
});
export type StockLevel = z.infer<typeof stockRowSchema>;

function toProduit(row: unknown): Produit {
  const { prix_cents, ...rest } = produitRowSchema.parse(row);
  return { ...rest, prix: fromCents(prix_cents) };
}

/** The stock service's catalogue: stores, products and the stock level of each product in each store. */
export class CatalogueRepository {
  constructor(private readonly pool: Pool) {}

  async createMagasin(input: {
    nom: string;
    adresse?: string | undefined;
    ville?: string | undefined;
  }): Promise<Magasin> {
    try {
      const result = await this.pool.query(
        'INSERT INTO magasins (nom, adresse, ville) VALUES ($1, $2, $3) RETURNING id, nom, adresse, ville',
        [input.nom, input.adresse ?? null, input.ville ?? null],
      );
      return magasinRowSchema.parse(result.rows[0]);
    } catch (error) {
      if (pgErrorCode(error) === '23505')
        throw new ConflictError(`nom: a magasin named "${input.nom}" already exists`);
      throw error;
    }
  }

  async listMagasins(): Promise<Magasin[]> {
    const result = await this.pool.query('SELECT id, nom, adresse, ville FROM magasins ORDER BY id');
    return result.rows.map((row) => magasinRowSchema.parse(row));
  }

  async getMagasin(id: number): Promise<Magasin> {
    const result = await this.pool.query('SELECT id, nom, adresse, ville FROM magasins WHERE id = $1', [id]);
    if (!result.rows[0]) throw new NotFoundError(`magasin ${id} not found`);
    return magasinRowSchema.parse(result.rows[0]);
  }

  async createProduit(input: {
    nom: string;
    categorie?: string | undefined;
    prix: number;
  }): Promise<Produit> {
    const result = await this.pool.query(
      'INSERT INTO produits (nom, categorie, prix_cents) VALUES ($1, $2, $3) RETURNING id, nom, categorie, prix_cents',
      [input.nom, input.categorie ?? null, toCents(input.prix)],
    );
    return toProduit(result.rows[0]);
  }

  async listProduits(): Promise<Produit[]> {
    const result = await this.pool.query('SELECT id, nom, categorie, prix_cents FROM produits ORDER BY id');
    return result.rows.map(toProduit);
  }

  async getProduit(id: number): Promise<Produit> {
    const result = await this.pool.query(
      'SELECT id, nom, categorie, prix_cents FROM produits WHERE id = $1',
      [id],
    );
    if (!result.rows[0]) throw new NotFoundError(`produit ${id} not found`);
    return toProduit(result.rows[0]);
  }

  /**
   * Sets the quantity available to sell; what is reserved for orders in flight is left as it is. The
   * change is recorded as a StockAjuste event in the same transaction, so stock can be audited.
   */
  async setStock(magasinId: number, produitId: number, quantite: number): Promise<StockLevel> {
    await this.getMagasin(magasinId);
    await this.getProduit(produitId);
    return withTransaction(this.pool, async (tx) => {
      await tx.query(
        `INSERT INTO stock (magasin_id, produit_id, quantite) VALUES ($1, $2, 0)
         ON CONFLICT (magasin_id, produit_id) DO NOTHING`,
        [magasinId, produitId],
      );
      const before = stockRowSchema.parse(
        (
          await tx.query(
            'SELECT magasin_id, produit_id, quantite, reservee FROM stock WHERE magasin_id = $1 AND produit_id = $2 FOR UPDATE',
            [magasinId, produitId],
          )
        ).rows[0],
      );
      const result = await tx.query(
        `UPDATE stock SET quantite = $3 WHERE magasin_id = $1 AND produit_id = $2
         RETURNING magasin_id, produit_id, quantite, reservee`,
        [magasinId, produitId, quantite],
      );
      const aggregateId = `stock-${magasinId}-${produitId}`;
      // The row lock above serializes adjustments of this line, so the version read here stays current.
      const version = await streamVersion(tx, aggregateId);
      await appendToStream(tx, aggregateId, version, [
        {
          event_type: 'StockAjuste',
          source: 'stock-service',
          causation_id: null,
          data: { magasin_id: magasinId, produit_id: produitId, quantite, delta: quantite - before.quantite },
        },
      ]);
      return stockRowSchema.parse(result.rows[0]);
    });
  }

  async stockOfMagasin(magasinId: number): Promise<Omit<StockLevel, 'magasin_id'>[]> {
    await this.getMagasin(magasinId);
    const result = await this.pool.query(
      'SELECT magasin_id, produit_id, quantite, reservee FROM stock WHERE magasin_id = $1 ORDER BY produit_id',
      [magasinId],
    );
    return result.rows.map((row) => {
      const { magasin_id: _, ...level } = stockRowSchema.parse(row);
      return level;
    });
  }
}
