import { z } from 'zod';
import type { SagaEnvelope, SagaEnvelopeOf } from '../../domain/events.js';
import { toCents } from '../../domain/money.js';
import { assertCommandeAccepts, type CommandeSession } from '../commande/commande-stream.js';
import type { ServiceActor } from '../service-actor.js';

const SOURCE = 'ventes-service';

const recordedSaleSchema = z.object({ id: z.number().int(), commande_id: z.string() });

/** Records the sale once payment is accepted. */
export const ventesActor: ServiceActor = {
  name: SOURCE,
  streams: ['paiement.evenements'],
  handles: ['PaiementAccepte'],
  handle: (session, event) => recordSales(session, [event]),
  handleAll: recordSales,
};

/** The sales of a batch are recorded with one statement, then confirmed in order with their ids. */
async function recordSales(session: CommandeSession, events: readonly SagaEnvelope[]): Promise<void> {
  const paid = events.filter(
    (event): event is SagaEnvelopeOf<'PaiementAccepte'> => event.event_type === 'PaiementAccepte',
  );
  if (paid.length === 0) return;
  for (const event of paid) assertCommandeAccepts(await session.load(event.aggregate_id), 'VenteConfirmee');
  const inserted = await session.tx.query(
    `INSERT INTO ventes (commande_id, client_id, magasin_id, total_cents)
     SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::bigint[])
     RETURNING id, commande_id`,
    [
      paid.map((event) => event.aggregate_id),
      paid.map((event) => event.data.client_id),
      paid.map((event) => event.data.magasin_id),
      paid.map((event) => toCents(event.data.total)),
    ],
  );
  const venteIds = new Map(
    inserted.rows.map((row) => recordedSaleSchema.parse(row)).map((sale) => [sale.commande_id, sale.id]),
  );
  for (const event of paid) {
    const venteId = venteIds.get(event.aggregate_id);
    if (venteId === undefined) throw new Error(`no sale recorded for commande ${event.aggregate_id}`);
    const { client_id, magasin_id, total } = event.data;
    session.append(await session.load(event.aggregate_id), {
      event_type: 'VenteConfirmee',
      source: SOURCE,
      causation_id: event.event_id,
      data: { vente_id: venteId, client_id, magasin_id, total },
    });
  }
}
