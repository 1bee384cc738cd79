import { z } from 'zod';
import type { SagaEnvelope, SagaEnvelopeOf } from '../../domain/events.js';
import type { PoolClient } from '../../persistence/database.js';
import {
  assertCommandeAccepts,
  type CommandeSession,
  creationOf,
  statutOfCommande,
} from '../commande/commande-stream.js';
import type { ServiceActor } from '../service-actor.js';
import { StockLedger, type StockNeeds } from './stock-ledger.js';

const SOURCE = 'stock-service';

const reservationRowSchema = z.object({
  magasin_id: z.number().int(),
  produit_id: z.number().int(),
  quantite: z.number().int(),
});

/**
 * Reserves every line of an order in the chosen store at once, or none; releases the reservation when
 * payment is refused or the commande expired (after the refund, if it was paid); turns it into a sale
 * when the sale is confirmed.
 */
export const stockActor: ServiceActor = {
  name: SOURCE,
  streams: ['commande.evenements', 'paiement.evenements', 'vente.evenements'],
  handles: ['CommandeCreee', 'CommandeExpiree', 'PaiementRefuse', 'PaiementRembourse', 'VenteConfirmee'],
  handle: (session, event) => handleAll(session, [event]),
  handleAll,
};

/**
 * Locks every stock row the events may change, in one statement, applies the events in order, then
 * writes the reservations and sales they recorded.
 */
async function handleAll(session: CommandeSession, events: readonly SagaEnvelope[]): Promise<void> {
  const needs: StockNeeds = { lines: [], settling: [] };
  for (const event of events) {
    if (event.event_type === 'CommandeCreee') {
      const { magasin_id, produits } = event.data;
      for (const line of produits) needs.lines.push({ magasinId: magasin_id, produitId: line.produit_id });
    } else {
      needs.settling.push(event.aggregate_id);
    }
  }
  const ledger = await StockLedger.lock(session.tx, needs);
  for (const event of events) await apply(session, ledger, event);
  ledger.write(session.tx);
}

function apply(session: CommandeSession, ledger: StockLedger, event: SagaEnvelope): Promise<void> {
  switch (event.event_type) {
    case 'CommandeCreee':
      return reserve(session, ledger, event);
    case 'PaiementRefuse':
      return release(session, ledger, event, 'paiement_refuse');
    case 'PaiementRembourse':
      return release(session, ledger, event, event.data.raison);
    case 'CommandeExpiree':
      return releaseIfExpiredWithStock(session, ledger, event);
    case 'VenteConfirmee':
      ledger.sell(event.aggregate_id);
      return Promise.resolve();
    default:
      return Promise.resolve();
  }
}

async function reserve(
  session: CommandeSession,
  ledger: StockLedger,
  event: SagaEnvelopeOf<'CommandeCreee'>,
): Promise<void> {
  const commande = await session.load(event.aggregate_id);
  assertCommandeAccepts(commande, 'StockReserve');
  const { magasin_id, client_id, produits, total } = event.data;
  const wanted = new Map<number, number>();
  for (const line of produits)
    wanted.set(line.produit_id, (wanted.get(line.produit_id) ?? 0) + line.quantite);
  const produitIds = [...wanted.keys()].sort((a, b) => a - b);

  const manquants = produitIds
    .map((produit_id) => ({
      produit_id,
      demande: wanted.get(produit_id) ?? 0,
      disponible: ledger.availableOf(magasin_id, produit_id),
    }))
    .filter((line) => line.disponible < line.demande);

  if (manquants.length > 0) {
    session.append(commande, {
      event_type: 'StockIndisponible',
      source: SOURCE,
      causation_id: event.event_id,
      data: { client_id, magasin_id, raison: 'stock_insuffisant', manquants },
    });
    return;
  }

  const reserved = produitIds.map((produit_id) => ({ produit_id, quantite: wanted.get(produit_id) ?? 0 }));
  ledger.reserve(event.aggregate_id, magasin_id, reserved);
  session.append(commande, {
    event_type: 'StockReserve',
    source: SOURCE,
    causation_id: event.event_id,
    data: { client_id, magasin_id, produits: reserved, total },
  });
}

/**
 * Gives the order's reserved lines back to `quantite`, reservations and stock in one statement (the ledger
 * locked the stock rows).
 */
async function releaseReservations(
  tx: PoolClient,
  ledger: StockLedger,
  commandeId: string,
): Promise<z.infer<typeof reservationRowSchema>[]> {
  // Statements in event order: the reservations and sales recorded before this event are written first.
  ledger.write(tx);
  const released = await tx.query(
    `WITH released AS (
       UPDATE stock_reservations SET statut = 'liberee'
       WHERE commande_id = $1 AND statut = 'reservee'
       RETURNING magasin_id, produit_id, quantite
     ), moved AS (
       UPDATE stock AS s SET quantite = s.quantite + r.quantite, reservee = s.reservee - r.quantite
       FROM released AS r
       WHERE s.magasin_id = r.magasin_id AND s.produit_id = r.produit_id
     )
     SELECT magasin_id, produit_id, quantite FROM released ORDER BY produit_id`,
    [commandeId],
  );
  const lines = released.rows.map((row) => reservationRowSchema.parse(row));
  for (const line of lines) ledger.adjust(line.magasin_id, line.produit_id, line.quantite);
  return lines;
}

async function release(
  session: CommandeSession,
  ledger: StockLedger,
  event: SagaEnvelope,
  raison: string,
): Promise<void> {
  const commande = await session.load(event.aggregate_id);
  assertCommandeAccepts(commande, 'StockLibere');
  const lines = await releaseReservations(session.tx, ledger, event.aggregate_id);
  session.append(commande, {
    event_type: 'StockLibere',
    source: SOURCE,
    causation_id: event.event_id,
    data: {
      magasin_id: creationOf(commande).data.magasin_id,
      produits: lines.map(({ produit_id, quantite }) => ({ produit_id, quantite })),
      raison,
    },
  });
}

/** An expired commande that holds stock but was never paid gives its stock back at once. */
async function releaseIfExpiredWithStock(
  session: CommandeSession,
  ledger: StockLedger,
  event: SagaEnvelopeOf<'CommandeExpiree'>,
): Promise<void> {
  const commande = await session.load(event.aggregate_id);
  // Expired before the reservation: nothing to give back. Expired after payment: the refund comes first.
  if (statutOfCommande(commande) !== 'liberation_stock') return;
  await release(session, ledger, event, event.data.raison);
}
