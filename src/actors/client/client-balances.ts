import { z } from 'zod';
import type { PoolClient } from '../../persistence/database.js';
import { holdStatement } from '../../persistence/statement-pipeline.js';

const lockedBalanceSchema = z.object({ id: z.number().int(), solde_cents: z.number().int() });

export interface Payment {
  commandeId: string;
  clientId: number;
  montantCents: number;
  statut: 'accepte' | 'refuse';
}

/**
 * The balances one transaction of the client service works on, locked with one statement in id order (so
 * that batches of two processes never wait on each other in a cycle) and kept up to date in memory, so
 * that each payment of the batch is decided on the balance the ones before it left. The payments are
 * written, and the balances debited, by one statement: at the end of the batch, or before a statement
 * that must come after them (a refund).
 */
export class ClientBalances {
  private readonly payments: Payment[] = [];

  private constructor(private readonly soldes: Map<number, number>) {}

  static async lock(tx: PoolClient, clientIds: Iterable<number>): Promise<ClientBalances> {
    const locked = await tx.query(
      'SELECT id, solde_cents FROM clients WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE',
      [[...new Set(clientIds)]],
    );
    const rows = locked.rows.map((row) => lockedBalanceSchema.parse(row));
    return new ClientBalances(new Map(rows.map((row) => [row.id, row.solde_cents])));
  }

  /** Undefined for a client that does not exist. */
  soldeOf(clientId: number): number | undefined {
    return this.soldes.get(clientId);
  }

  /** Debits the balance if it covers the amount, and records the payment either way. */
  pay(commandeId: string, clientId: number, montantCents: number): Payment {
    const solde = this.soldes.get(clientId);
    const accepted = solde !== undefined && solde >= montantCents;
    if (accepted) this.soldes.set(clientId, solde - montantCents);
    const payment: Payment = { commandeId, clientId, montantCents, statut: accepted ? 'accepte' : 'refuse' };
    this.payments.push(payment);
    return payment;
  }

  /** Records a credit that the transaction has just written. */
  credit(clientId: number, montantCents: number): void {
    const solde = this.soldes.get(clientId);
    if (solde !== undefined) this.soldes.set(clientId, solde + montantCents);
  }

  /**
   * Writes the payments decided since the last write, and the debits of the accepted ones, with the
   * transaction's next statement.
   */
  write(tx: PoolClient): void {
    if (this.payments.length === 0) return;
    const payments = this.payments.splice(0);
    holdStatement(
      tx,
      `WITH debited AS (
         UPDATE clients AS c SET solde_cents = c.solde_cents - d.montant_cents
         FROM (
           SELECT client_id, sum(montant_cents) AS montant_cents
           FROM unnest($2::int[], $3::bigint[], $4::text[]) AS p(client_id, montant_cents, statut)
           WHERE statut = 'accepte' GROUP BY client_id
         ) AS d
         WHERE c.id = d.client_id
       )
       INSERT INTO paiements (commande_id, client_id, montant_cents, statut)
       SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[])`,
      [
        payments.map((payment) => payment.commandeId),
        payments.map((payment) => payment.clientId),
        payments.map((payment) => payment.montantCents),
        payments.map((payment) => payment.statut),
      ],
    );
  }
}
