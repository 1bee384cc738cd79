import { z } from 'zod';
import { nonNegativeMoneySchema, positiveMoneySchema } from '../domain/money.js';

export const idParam = z.coerce.number().int().positive();
export const messageSchema = z.object({ message: z.string() });

export const magasinSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  adresse: z.string().nullable(),
  ville: z.string().nullable(),
});
export const createMagasinBody = z.object({
  nom: z.string().trim().min(1),
  adresse: z.string().optional(),
  ville: z.string().optional(),
});

export const produitSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  categorie: z.string().nullable(),
  prix: z.number(),
});
export const createProduitBody = z.object({
  nom: z.string().trim().min(1),
  categorie: z.string().optional(),
  prix: positiveMoneySchema,
});

export const stockLevelSchema = z.object({
  magasin_id: z.number().int(),
  produit_id: z.number().int(),
  quantite: z.number().int(),
  reservee: z.number().int(),
});
export const setStockBody = z.object({ quantite: z.number().int().min(0) });

export const clientSchema = z.object({ id: z.number().int(), nom: z.string(), solde: z.number() });
export const createClientBody = z.object({ nom: z.string().trim().min(1), solde: nonNegativeMoneySchema });

/** A line of a cart, and of the commande made from it, priced when it was added or checked out. */
const orderLineSchema = z.object({
  produit_id: z.number().int(),
  quantite: z.number().int(),
  prix_unitaire: z.number(),
  sous_total: z.number(),
});

export const panierSchema = z.object({
  client_id: z.number().int(),
  articles: z.array(orderLineSchema),
  total: z.number(),
});
export const addArticleBody = z.object({
  produit_id: z.number().int().positive(),
  quantite: z.number().int().positive(),
});
export const checkoutBody = z.object({ magasin_id: z.number().int().positive() });
export const checkoutReply = z.object({ commande_id: z.string(), statut: z.literal('en_attente_stock') });

const historiqueSchema = z.array(z.object({ event_type: z.string(), timestamp: z.string() }));
export const commandeSchema = z.object({
  commande_id: z.string(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  produits: z.array(orderLineSchema),
  total: z.number(),
  statut: z.string(),
  raison: z.string().nullable(),
  historique: historiqueSchema,
});

export const venteSchema = z.object({
  id: z.number().int(),
  commande_id: z.string(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  total: z.number(),
  date: z.string(),
});

export const envelopeSchema = z.object({
  event_id: z.string(),
  event_type: z.string(),
  aggregate_id: z.string(),
  version: z.number().int(),
  position: z.number().int(),
  timestamp: z.string(),
  source: z.string(),
  correlation_id: z.string(),
  causation_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

export const projectionSchema = z.object({
  client_id: z.number().int(),
  produits: commandeSchema.shape.produits,
  total: z.number(),
  statut: z.string(),
});
