import { DEFAULT_CHECKOUT_MAX_WAITING } from '../../config.js';
import { UnavailableError } from '../../domain/errors.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { type Pool, withTransaction } from '../../persistence/database.js';
import { holdAppend } from '../../persistence/event-store.js';
import { type CheckoutResult, checkout, commandeCreee, newCommandeId, takeCarts } from './checkout.js';

interface WaitingCheckout {
  clientId: number;
  magasinId: number;
  resolve: (result: CheckoutResult) => void;
  reject: (error: unknown) => void;
}

export interface CheckoutBatcherOptions {
  /** Where a failed shared transaction is said; without one, a logger of its own (failures are never silent). */
  logger?: Logger;
  /** At most this many checkouts go in one transaction. */
  maxBatch?: number;
  /**
   * At most this many checkouts wait for the transaction in progress; past it a checkout is refused at once
   * (503, retry later) rather than held in memory while the database falls further behind
   * (CHECKOUT_MAX_WAITING).
   */
  maxWaiting?: number;
}

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
  private readonly logger: Logger;
  private readonly maxBatch: number;
  private readonly maxWaiting: number;

  constructor(
    private readonly pool: Pool,
    options: CheckoutBatcherOptions = {},
  ) {
    this.logger = options.logger ?? createLogger('info', 'checkout-batcher');
    this.maxBatch = options.maxBatch ?? 200;
    this.maxWaiting = options.maxWaiting ?? DEFAULT_CHECKOUT_MAX_WAITING;
  }

  checkout(clientId: number, magasinId: number, idempotencyKey: string | undefined): Promise<CheckoutResult> {
    if (idempotencyKey !== undefined) return checkout(this.pool, clientId, magasinId, idempotencyKey);
    if (this.queue.length >= this.maxWaiting) {
      return Promise.reject(
        new UnavailableError(`${this.queue.length} checkouts are waiting for the database: retry later`),
      );
    }
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
        this.logger.error({ err: error, checkouts: batch.length }, 'checkout batch failed unexpectedly');
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
      } catch (error) {
        // Nothing was written: each is tried on its own below, and gets its own error if it has one. Said,
        // because a shared transaction that keeps failing costs one transaction per checkout.
        this.logger.warn(
          { err: error, checkouts: shared.length },
          'checkouts written together failed: each is tried on its own',
        );
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
      const carts = await takeCarts(tx, batch);
      const created = new Map<WaitingCheckout, CheckoutResult>();
      const appends = batch.flatMap((waiting) => {
        const panier = carts.get(waiting.clientId);
        if (!panier) return [];
        const commandeId = newCommandeId();
        created.set(waiting, { commande_id: commandeId, statut: 'en_attente_stock', replayed: false });
        return [
          {
            aggregateId: commandeId,
            expectedVersion: 0,
            events: [commandeCreee(waiting.clientId, waiting.magasinId, panier)],
          },
        ];
      });
      holdAppend(tx, appends);
      return created;
    });
  }
}
