import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { type Pool, withTransaction } from '../../persistence/database.js';
import { appendToStream } from '../../persistence/event-store.js';
import { readPanier } from './panier-repository.js';

const SOURCE = 'panier-service';

export interface CheckoutResult {
  commande_id: string;
  statut: 'en_attente_stock';
  /** True when an earlier checkout with the same Idempotency-Key already created this commande. */
  replayed: boolean;
}

const existingCheckoutSchema = z.object({ commande_id: z.string() });

/**
 * Turns the client's cart into a commande: CommandeCreee is appended and the cart emptied in one
 * transaction. The client's row is locked so that two checkouts of one client never share a cart,
 * and an Idempotency-Key seen before returns the commande it created.
 */
export async function checkout(
  pool: Pool,
  clientId: number,
  magasinId: number,
  idempotencyKey: string | undefined,
): Promise<CheckoutResult> {
  return withTransaction(pool, async (tx) => {
    const client = await tx.query('SELECT 1 FROM clients WHERE id = $1 FOR UPDATE', [clientId]);
    if (client.rowCount === 0) throw new NotFoundError(`client ${clientId} not found`);
    if (idempotencyKey !== undefined) {
      const existing = await tx.query(
        'SELECT commande_id FROM checkouts WHERE client_id = $1 AND idempotency_key = $2',
        [clientId, idempotencyKey],
      );
      if (existing.rows[0]) {
        const { commande_id } = existingCheckoutSchema.parse(existing.rows[0]);
        return { commande_id, statut: 'en_attente_stock', replayed: true };
      }
    }
    const magasin = await tx.query('SELECT 1 FROM magasins WHERE id = $1', [magasinId]);
    if (magasin.rowCount === 0) throw new NotFoundError(`magasin ${magasinId} not found`);
    const panier = await readPanier(tx, clientId);
    if (panier.articles.length === 0) throw new ConflictError(`the panier of client ${clientId} is empty`);

    const commandeId = `cmd-${randomUUID()}`;
    await appendToStream(tx, commandeId, 0, [
      {
        event_type: 'CommandeCreee',
        source: SOURCE,
        causation_id: null,
        data: { client_id: clientId, magasin_id: magasinId, produits: panier.articles, total: panier.total },
      },
    ]);
    await tx.query('DELETE FROM panier_articles WHERE client_id = $1', [clientId]);
    if (idempotencyKey !== undefined) {
      await tx.query('INSERT INTO checkouts (client_id, idempotency_key, commande_id) VALUES ($1, $2, $3)', [
        clientId,
        idempotencyKey,
        commandeId,
      ]);
    }
    return { commande_id: commandeId, statut: 'en_attente_stock', replayed: false };
  });
}
