import { z } from 'zod';
import type { SagaEnvelope, SagaEnvelopeOf } from '../../domain/events.js';
import { fromCents, toCents } from '../../domain/money.js';
import {
  assertCommandeAccepts,
  type CommandeSession,
  creationOf,
  statutOfCommande,
} from '../commande/commande-stream.js';
import type { ServiceActor } from '../service-actor.js';

const SOURCE = 'client-service';

const balanceRowSchema = z.object({ solde_cents: z.number().int() });

/** Debits the exact total once the stock is reserved, if the balance allows it; refunds an expired commande. */
export const clientActor: ServiceActor = {
  name: SOURCE,
  streams: ['stock.evenements', 'commande.evenements'],
  handles: ['StockReserve', 'CommandeExpiree'],
  async handle(session, event) {
    if (event.event_type === 'StockReserve') await pay(session, event);
    if (event.event_type === 'CommandeExpiree') await refundIfPaid(session, event);
  },
  async handleAll(session, events) {
    await lockClients(session, events);
    for (const event of events) await this.handle(session, event);
  },
};

/**
 * Locks the balances a batch will change, in id order, before changing any: batches of two client-service
 * processes running at once then never wait on each other in a cycle.
 */
async function lockClients(session: CommandeSession, events: readonly SagaEnvelope[]): Promise<void> {
  if (events.length < 2) return;
  const clientIds = new Set<number>();
  for (const event of events) {
    clientIds.add(creationOf(await session.load(event.aggregate_id)).data.client_id);
  }
  await session.tx.query('SELECT id FROM clients WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE', [
    [...clientIds],
  ]);
}

async function pay(session: CommandeSession, event: SagaEnvelopeOf<'StockReserve'>): Promise<void> {
  const { tx } = session;
  const commande = await session.load(event.aggregate_id);
  assertCommandeAccepts(commande, 'PaiementAccepte');
  const { client_id, magasin_id, total } = event.data;
  const totalCents = toCents(total);
  // One statement on the usual path: the debit happens only if the balance covers it (checked on the row's
  // latest version, so two payments of one client cannot both spend the same money), and records itself.
  const debited = await tx.query(
    `WITH debit AS (
       UPDATE clients SET solde_cents = solde_cents - $3 WHERE id = $2 AND solde_cents >= $3 RETURNING id
     )
     INSERT INTO paiements (commande_id, client_id, montant_cents, statut)
     SELECT $1, id, $3, 'accepte' FROM debit`,
    [event.aggregate_id, client_id, totalCents],
  );
  if (debited.rowCount === 1) {
    session.append(commande, {
      event_type: 'PaiementAccepte',
      source: SOURCE,
      causation_id: event.event_id,
      data: { client_id, magasin_id, total },
    });
    return;
  }
  const balance = await tx.query('SELECT solde_cents FROM clients WHERE id = $1', [client_id]);
  const known = balance.rows[0] ? balanceRowSchema.parse(balance.rows[0]) : null;
  const soldeCents = known?.solde_cents ?? 0;
  await tx.query(
    `INSERT INTO paiements (commande_id, client_id, montant_cents, statut) VALUES ($1, $2, $3, 'refuse')`,
    [event.aggregate_id, client_id, totalCents],
  );
  session.append(commande, {
    event_type: 'PaiementRefuse',
    source: SOURCE,
    causation_id: event.event_id,
    data: {
      client_id,
      magasin_id,
      total,
      solde: fromCents(soldeCents),
      raison: known ? 'solde_insuffisant' : 'client_inconnu',
    },
  });
}

const paymentRowSchema = z.object({ client_id: z.number().int(), montant_cents: z.number().int() });

/** A commande that expired after its payment gets the exact amount back. */
async function refundIfPaid(
  session: CommandeSession,
  event: SagaEnvelopeOf<'CommandeExpiree'>,
): Promise<void> {
  const { tx } = session;
  const commande = await session.load(event.aggregate_id);
  if (statutOfCommande(commande) !== 'remboursement') return;
  const refunded = await tx.query(
    `UPDATE paiements SET statut = 'rembourse' WHERE commande_id = $1 AND statut = 'accepte'
     RETURNING client_id, montant_cents`,
    [event.aggregate_id],
  );
  if (!refunded.rows[0])
    throw new Error(`commande ${event.aggregate_id} awaits a refund but has no accepted payment`);
  const payment = paymentRowSchema.parse(refunded.rows[0]);
  await tx.query('UPDATE clients SET solde_cents = solde_cents + $2 WHERE id = $1', [
    payment.client_id,
    payment.montant_cents,
  ]);
  session.append(commande, {
    event_type: 'PaiementRembourse',
    source: SOURCE,
    causation_id: event.event_id,
    data: {
      client_id: payment.client_id,
      magasin_id: creationOf(commande).data.magasin_id,
      total: fromCents(payment.montant_cents),
      raison: event.data.raison,
    },
  });
}
