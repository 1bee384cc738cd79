import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { runConservationAudit } from '../../audit/conservation-audit.js';
import type { ApiDependencies } from '../api-dependencies.js';

const stockLineSchema = z.object({
  magasin_id: z.number(),
  produit_id: z.number(),
  ajoute: z.number(),
  reserve: z.number(),
  libere: z.number(),
  quantite_attendue: z.number(),
  quantite: z.number(),
  engagee_attendue: z.number(),
  engagee: z.number(),
  vendue: z.number(),
  vendue_justifiee: z.number(),
  ok: z.boolean(),
});

const effectWithoutEventSchema = z.object({
  table: z.enum(['stock_reservations', 'ventes', 'paiements', 'sagas']),
  commande_id: z.string(),
  effet: z.string(),
  evenement_manquant: z.string(),
});

const clientLineSchema = z.object({
  client_id: z.number(),
  solde_initial: z.number(),
  paye: z.number(),
  rembourse: z.number(),
  solde_attendu: z.number(),
  solde: z.number(),
  ventes_attendues: z.number(),
  ventes: z.number(),
  ok: z.boolean(),
});

const auditSchema = z.object({
  ok: z.boolean(),
  checked_at: z.string(),
  stock: z.object({ ok: z.boolean(), lignes: z.number(), ecarts: z.array(stockLineSchema) }),
  argent: z.object({ ok: z.boolean(), clients: z.number(), ecarts: z.array(clientLineSchema) }),
  effets_sans_evenement: z.array(effectWithoutEventSchema),
  commandes: z.object({
    total: z.number(),
    finales: z.number(),
    en_cours: z.array(
      z.object({ commande_id: z.string(), statut: z.string(), depuis: z.string(), age_ms: z.number() }),
    ),
  }),
});

export const auditRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { pool }) => {
  app.get(
    '/api/audit',
    {
      config: { access: 'staff' },
      schema: {
        tags: ['operations'],
        description:
          'Stock and money recomputed from the event store and compared with the services’ tables (only the ' +
          'discrepancies are listed), every change in those tables that no event accounts for (e.g. a reservation ' +
          'sold without a VenteConfirmee), and every commande not in a final state, oldest first.',
        response: { 200: auditSchema },
      },
    },
    () => runConservationAudit(pool),
  );
};
