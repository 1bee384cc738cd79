import { z } from 'zod';
import type { SagaEnvelope, SagaEnvelopeOf } from '../../domain/events.js';
import { fromCents, toCents } from '../../domain/money.js';
import { holdStatement } from '../../persistence/statement-pipeline.js';
import {
  assertCommandeAccepts,
  type CommandeSession,
  creationOf,
  statutOfCommande,
} from '../commande/commande-stream.js';
import type { ServiceActor } from '../service-actor.js';
import { ClientBalances } from './client-balances.js';

const SOURCE = 'client-service';

/** Debits the exact total once the stock is reserved, if the balance allows it; refunds an expired commande. */
export const clientActor: ServiceActor = {
  name: SOURCE,
  streams: ['stock.evenements', 'commande.evenements'],
  handles: ['StockReserve', 'CommandeExpiree'],
  handle: (session, event) => handleAll(session, [event]),
  handleAll,
};

/**
 * Locks and reads every balance the events may change, in one statement, applies the events in order,
 * then writes the payments they decided.
 */
async function handleAll(session: CommandeSession, events: readonly SagaEnvelope[]): Promise<void> {
  const clientIds: number[] = [];
  for (const event of events) {
    // A commande with no creation has no client: `pay` refuses it, `refundIfPaid` has nothing to do.
    const created = (await session.load(event.aggregate_id)).events[0];
    if (created?.event_type === 'CommandeCreee') clientIds.push(created.data.client_id);
  }
  const balances = await ClientBalances.lock(session.tx, clientIds);
  for (const event of events) {
    if (event.event_type === 'StockReserve') await pay(session, balances, event);
    if (event.event_type === 'CommandeExpiree') await refundIfPaid(session, balances, event);
  }
  balances.write(session.tx);
}

async function pay(
  session: CommandeSession,
  balances: ClientBalances,
  event: SagaEnvelopeOf<'StockReserve'>,
): Promise<void> {
  const commande = await session.load(event.aggregate_id);
  assertCommandeAccepts(commande, 'PaiementAccepte');
  const { client_id, magasin_id, total } = event.data;
  const soldeBefore = balances.soldeOf(client_id);
  const payment = balances.pay(event.aggregate_id, client_id, toCents(total));
  if (payment.statut === 'accepte') {
    session.append(commande, {
      event_type: 'PaiementAccepte',
      source: SOURCE,
      causation_id: event.event_id,
      data: { client_id, magasin_id, total },
    });
    return;
  }
  session.append(commande, {
    event_type: 'PaiementRefuse',
    source: SOURCE,
    causation_id: event.event_id,
    data: {
      client_id,
      magasin_id,
      total,
      solde: fromCents(soldeBefore ?? 0),
      raison: soldeBefore === undefined ? 'client_inconnu' : 'solde_insuffisant',
    },
  });
}

const paymentRowSchema = z.object({ client_id: z.number().int(), montant_cents: z.number().int() });

/** A commande that expired after its payment gets the exact amount back. */
async function refundIfPaid(
  session: CommandeSession,
  balances: ClientBalances,
  event: SagaEnvelopeOf<'CommandeExpiree'>,
): Promise<void> {
  const { tx } = session;
  const commande = await session.load(event.aggregate_id);
  if (statutOfCommande(commande) !== 'remboursement') return;
  // Statements in event order: the payments decided before this event are written first.
  balances.write(tx);
  const refunded = await tx.query(
    `UPDATE paiements SET statut = 'rembourse' WHERE commande_id = $1 AND statut = 'accepte'
     RETURNING client_id, montant_cents`,
    [event.aggregate_id],
  );
  if (!refunded.rows[0])
    throw new Error(`commande ${event.aggregate_id} awaits a refund but has no accepted payment`);
  const payment = paymentRowSchema.parse(refunded.rows[0]);
  holdStatement(tx, 'UPDATE clients SET solde_cents = solde_cents + $2 WHERE id = $1', [
    payment.client_id,
    payment.montant_cents,
  ]);
  balances.credit(payment.client_id, payment.montant_cents);
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
