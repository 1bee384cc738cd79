import { z } from 'zod';
import type { SagaEnvelopeOf } from '../../domain/events.js';
import { toCents } from '../../domain/money.js';
import { assertCommandeAccepts, type CommandeSession } from '../commande/commande-stream.js';
import type { ServiceActor } from '../service-actor.js';

const SOURCE = 'ventes-service';

const venteIdSchema = z.object({ id: z.number().int() });

/** Records the sale once payment is accepted. */
export const ventesActor: ServiceActor = {
  name: SOURCE,
  streams: ['paiement.evenements'],
  handles: ['PaiementAccepte'],
  async handle(session, event) {
    if (event.event_type === 'PaiementAccepte') await recordSale(session, event);
  },
};

async function recordSale(session: CommandeSession, event: SagaEnvelopeOf<'PaiementAccepte'>): Promise<void> {
  const commande = await session.load(event.aggregate_id);
  assertCommandeAccepts(commande, 'VenteConfirmee');
  const { client_id, magasin_id, total } = event.data;
  const inserted = await session.tx.query(
    `INSERT INTO ventes (commande_id, client_id, magasin_id, total_cents) VALUES ($1, $2, $3, $4) RETURNING id`,
    [event.aggregate_id, client_id, magasin_id, toCents(total)],
  );
  const { id } = venteIdSchema.parse(inserted.rows[0]);
  session.append(commande, {
    event_type: 'VenteConfirmee',
    source: SOURCE,
    causation_id: event.event_id,
    data: { vente_id: id, client_id, magasin_id, total },
  });
}
