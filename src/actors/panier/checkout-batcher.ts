import { z } from 'zod';
import { type Pool, withTransaction } from '../../persistence/database.js';
import { appendToStreams } from '../../persistence/event-store.js';
import { type CheckoutResult, checkout, commandeCreee, newCommandeId } from './checkout.js';
import { toPanier } from './panier-repository.js';

interface WaitingCheckout {
  clientId: number;
  magasinId: number;
  resolve: (result: CheckoutResult) => void;
  reject: (error: unknown) => void;
}

const takenRowSchema = z.object({ client_id: z.number().int() }).passthrough();

/**
 * Checkouts that arrive while others are being written go together in the next transaction: one
 * DELETE…RETURNING takes all their carts and one statement appends all their CommandeCreee, so a busy
 * shop shares commits instead of paying one per order. A checkout that finds nobody writing starts at
 * once, so a quiet shop waits for nothing. Anything unusual (an Idempotency-Key, a refusal, a failed
 * shared transaction) goes through `checkout` on its own, which gives each its exact answer.
 */
export class CheckoutBatcher {
  private queue: WaitingCheckout[] = [];
  private writing = false;

  constructor(
    private readonly pool: Pool,
    private readonly maxBatch = 200,
  ) {}

  checkout(clientId: number, magasinId: number, idempotencyKey: string | undefined): Promise<CheckoutResult> {
    if (idempotencyKey !== undefined) return checkout(this.pool, clientId, magasinId, idempotencyKey);
    return new Promise((resolve, reject) => {
      this.queue.push({ clientId, magasinId, resolve, reject });
      this.writeNext();
    });
  }

  private writeNext(): void {
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.writing = true;
    void this.write(batch)
      .catch((error: unknown) => {
        // write settles every checkout itself; this only keeps a bug there from leaving callers waiting.
        for (const waiting of batch) waiting.reject(error);
      })
      .finally(() => {
        this.writing = false;
        this.writeNext();
      });
  }

  private async write(batch: WaitingCheckout[]): Promise<void> {
    // One checkout per client per transaction: a second one of the same client comes after, on its own.
    const shared: WaitingCheckout[] = [];
    const alone: WaitingCheckout[] = [];
    const clients = new Set<number>();
    for (const waiting of batch) {
      if (clients.has(waiting.clientId)) alone.push(waiting);
      else {
        clients.add(waiting.clientId);
        shared.push(waiting);
      }
    }
    let created = new Map<WaitingCheckout, CheckoutResult>();
    if (shared.length > 1) {
      try {
        created = await this.checkoutTogether(shared);
      } catch {
        // Nothing was written: each is tried on its own below, and gets its own error if it has one.
      }
    }
    for (const waiting of shared) {
      const result = created.get(waiting);
      if (result) waiting.resolve(result);
      else alone.push(waiting);
    }
    await Promise.all(
      alone.map((waiting) =>
        checkout(this.pool, waiting.clientId, waiting.magasinId, undefined).then(
          waiting.resolve,
          waiting.reject,
        ),
      ),
    );
  }

  /** The checkouts whose cart was taken, with their commande; the others left untouched. */
  private async checkoutTogether(batch: WaitingCheckout[]): Promise<Map<WaitingCheckout, CheckoutResult>> {
    return withTransaction(this.pool, async (tx) => {
      const taken = await tx.query(
        `WITH requests AS (
           SELECT * FROM unnest($1::int[], $2::int[]) AS r(client_id, magasin_id)
         ), taken AS (
           DELETE FROM panier_articles AS a USING requests AS r
           WHERE a.client_id = r.client_id AND EXISTS (SELECT 1 FROM magasins WHERE id = r.magasin_id)
           RETURNING a.client_id, a.produit_id, a.quantite
         )
         SELECT t.client_id, t.produit_id, t.quantite, p.prix_cents
         FROM taken AS t JOIN produits AS p ON p.id = t.produit_id ORDER BY t.client_id, t.produit_id`,
        [batch.map((waiting) => waiting.clientId), batch.map((waiting) => waiting.magasinId)],
      );
      const rowsByClient = new Map<number, unknown[]>();
      for (const row of taken.rows) {
        const { client_id } = takenRowSchema.parse(row);
        rowsByClient.set(client_id, [...(rowsByClient.get(client_id) ?? []), row]);
      }
      const created = new Map<WaitingCheckout, CheckoutResult>();
      const appends = batch.flatMap((waiting) => {
        const rows = rowsByClient.get(waiting.clientId);
        if (!rows) return [];
        const commandeId = newCommandeId();
        created.set(waiting, { commande_id: commandeId, statut: 'en_attente_stock', replayed: false });
        const panier = toPanier(waiting.clientId, rows);
        return [
          {
            aggregateId: commandeId,
            expectedVersion: 0,
            events: [commandeCreee(waiting.clientId, waiting.magasinId, panier)],
          },
        ];
      });
      await appendToStreams(tx, appends);
      return created;
    });
  }
}
