import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import type { NewEvent } from '../../domain/events.js';
import { type Pool, type PoolClient, withTransaction } from '../../persistence/database.js';
import { holdAppend } from '../../persistence/event-store.js';
import { holdStatement } from '../../persistence/statement-pipeline.js';
import { type Panier, toPanier } from './panier-repository.js';

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
 * transaction. The cart is taken by deleting its rows, so two checkouts of one client never share it (the
 * second waits for the first and finds the cart empty), and an Idempotency-Key seen before returns the
 * commande it created. The usual path is two statements; only a refusal asks why.
 */
export async function checkout(
  pool: Pool,
  clientId: number,
  magasinId: number,
  idempotencyKey: string | undefined,
): Promise<CheckoutResult> {
  return withTransaction(pool, async (tx) => {
    if (idempotencyKey !== undefined) {
      const earlier = await findCheckout(tx, clientId, idempotencyKey);
      if (earlier) return earlier;
    }
    const panier = (await takeCarts(tx, [{ clientId, magasinId }])).get(clientId);
    if (!panier) return refuse(tx, clientId, magasinId, idempotencyKey);

    const commandeId = newCommandeId();
    holdAppend(tx, [
      { aggregateId: commandeId, expectedVersion: 0, events: [commandeCreee(clientId, magasinId, panier)] },
    ]);
    if (idempotencyKey !== undefined) {
      holdStatement(
        tx,
        'INSERT INTO checkouts (client_id, idempotency_key, commande_id) VALUES ($1, $2, $3)',
        [clientId, idempotencyKey, commandeId],
      );
    }
    return { commande_id: commandeId, statut: 'en_attente_stock', replayed: false };
  });
}

const takenRowSchema = z.object({ client_id: z.number().int() });

/**
 * Takes the carts of these clients, each for the store it names (nothing when the store does not exist),
 * by deleting their rows: a concurrent checkout of the same client waits, then finds the cart empty.
 * Returns what each non-empty cart held, at the catalogue's prices; one client at most once.
 */
export async function takeCarts(
  tx: PoolClient,
  requests: readonly { clientId: number; magasinId: number }[],
): Promise<Map<number, Panier>> {
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
    [requests.map((request) => request.clientId), requests.map((request) => request.magasinId)],
  );
  const rowsByClient = new Map<number, unknown[]>();
  for (const row of taken.rows) {
    const { client_id } = takenRowSchema.parse(row);
    const rows = rowsByClient.get(client_id) ?? [];
    rows.push(row);
    rowsByClient.set(client_id, rows);
  }
  return new Map([...rowsByClient].map(([clientId, rows]) => [clientId, toPanier(clientId, rows)]));
}

export function newCommandeId(): string {
  return `cmd-${randomUUID()}`;
}

export function commandeCreee(clientId: number, magasinId: number, panier: Panier): NewEvent {
  return {
    event_type: 'CommandeCreee',
    source: SOURCE,
    causation_id: null,
    data: { client_id: clientId, magasin_id: magasinId, produits: panier.articles, total: panier.total },
  };
}

async function findCheckout(
  tx: PoolClient,
  clientId: number,
  idempotencyKey: string,
): Promise<CheckoutResult | null> {
  const existing = await tx.query(
    'SELECT commande_id FROM checkouts WHERE client_id = $1 AND idempotency_key = $2',
    [clientId, idempotencyKey],
  );
  if (!existing.rows[0]) return null;
  const { commande_id } = existingCheckoutSchema.parse(existing.rows[0]);
  return { commande_id, statut: 'en_attente_stock', replayed: true };
}

/** Nothing was taken: an unknown client or store, a retry that lost the race to its twin, or an empty cart. */
async function refuse(
  tx: PoolClient,
  clientId: number,
  magasinId: number,
  idempotencyKey: string | undefined,
): Promise<CheckoutResult> {
  const client = await tx.query('SELECT 1 FROM clients WHERE id = $1', [clientId]);
  if (client.rowCount === 0) throw new NotFoundError(`client ${clientId} not found`);
  if (idempotencyKey !== undefined) {
    // A concurrent checkout with the same key took the cart while this one waited for it.
    const twin = await findCheckout(tx, clientId, idempotencyKey);
    if (twin) return twin;
  }
  const magasin = await tx.query('SELECT 1 FROM magasins WHERE id = $1', [magasinId]);
  if (magasin.rowCount === 0) throw new NotFoundError(`magasin ${magasinId} not found`);
  throw new ConflictError(`the panier of client ${clientId} is empty`);
}

/** Idempotency keys removed in one statement, so that a large backlog never holds one long transaction. */
const PRUNE_KEYS_PER_STATEMENT = 10_000;

/**
 * Forgets the Idempotency-Keys of checkouts older than `olderThanMs`: a client retrying with the same key
 * after that creates a new commande (IDEMPOTENCY_KEY_RETENTION_MS states how long a retry is recognised).
 * Returns how many were removed.
 */
export async function pruneIdempotencyKeys(pool: Pool, olderThanMs: number): Promise<number> {
  let removed = 0;
  for (;;) {
    const deleted = await pool.query(
      `DELETE FROM checkouts WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM checkouts WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)
         LIMIT $2))`,
      [olderThanMs, PRUNE_KEYS_PER_STATEMENT],
    );
    removed += deleted.rowCount ?? 0;
    if ((deleted.rowCount ?? 0) < PRUNE_KEYS_PER_STATEMENT) return removed;
  }
}
