import { z } from 'zod';

/**
 * The bounds of what the API accepts, each the bound of where the value ends up, so that bad input is
 * refused here with a 400 naming the field and never reaches PostgreSQL to find out:
 * - ids and quantities are PostgreSQL `integer` columns: 1..2147483647 (a stock level may be 0);
 * - amounts are stored as `bigint` cents, but computed in JavaScript numbers and checked for 2 decimals
 *   when events are read back (src/domain/money.ts), a check that refuses valid amounts from about 2^27
 *   (134 million) up: an amount, and a cart's total, is at most 99999999.99, with at most 2 decimals;
 * - free text (names, addresses, categories) is at most 200 characters, without NUL characters or unpaired
 *   surrogates (PostgreSQL text cannot hold the first and would silently replace the second);
 * - identifiers given as text (commande ids, aggregate ids, searches) likewise, at most 200 characters.
 */
export const POSTGRES_INTEGER_MAX = 2_147_483_647;
export const MONEY_MAX = 99_999_999.99;
export const TEXT_MAX_LENGTH = 200;

const ID_RANGE = `must be an id from 1 to ${POSTGRES_INTEGER_MAX}`;
const QUANTITY_MAX = `must be at most ${POSTGRES_INTEGER_MAX}`;
const MONEY_TOO_BIG = `must be at most ${MONEY_MAX}`;
const TEXT_TOO_LONG = `must be at most ${TEXT_MAX_LENGTH} characters`;
const NOT_STORABLE_TEXT = 'must not contain NUL characters or unpaired surrogates';

/** Text PostgreSQL stores as it was sent: no NUL character, no half of a surrogate pair. */
function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !/\p{Surrogate}/u.test(text);
}

/** An id in a path or query string (text, read as a number). */
export const idParam = z.coerce.number().int().min(1, ID_RANGE).max(POSTGRES_INTEGER_MAX, ID_RANGE);

/** An id in a JSON body. */
export const idField = z.number().int().min(1, ID_RANGE).max(POSTGRES_INTEGER_MAX, ID_RANGE);

/** A count of units that a PostgreSQL integer column holds, from `minimum`. */
export function quantityField(minimum: 0 | 1) {
  return z.number().int().min(minimum, `must be at least ${minimum}`).max(POSTGRES_INTEGER_MAX, QUANTITY_MAX);
}

/** An amount from `minimum`, at most MONEY_MAX, with at most 2 decimals (exactly: 0.1 + 0.2 is refused). */
export function moneyField(minimum: 0 | 0.01) {
  return z
    .number()
    .min(minimum, `must be at least ${minimum}`)
    .max(MONEY_MAX, MONEY_TOO_BIG)
    .refine((amount) => Number(amount.toFixed(2)) === amount, 'must have at most 2 decimals')
    .describe(`An amount with at most 2 decimals, from ${minimum} to ${MONEY_MAX}`);
}

/** Text a caller chooses (a name, an address): at most TEXT_MAX_LENGTH characters that PostgreSQL stores as sent. */
export const freeText = z
  .string()
  .max(TEXT_MAX_LENGTH, TEXT_TOO_LONG)
  .refine(isStorableText, NOT_STORABLE_TEXT);

/** A name, or a search: free text, trimmed, not empty. */
export const trimmedText = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(TEXT_MAX_LENGTH, TEXT_TOO_LONG)
  .refine(isStorableText, NOT_STORABLE_TEXT);

/** An identifier given as text (a commande id, an aggregate id, part of one): not empty, and within the same bounds. */
export const textId = z
  .string()
  .min(1)
  .max(TEXT_MAX_LENGTH, TEXT_TOO_LONG)
  .refine(isStorableText, NOT_STORABLE_TEXT);

/** How many rows a list answers, 1..`maximum` (100 when not given). */
export function limitQuery(maximum: number) {
  return z.coerce
    .number()
    .int()
    .min(1, `must be from 1 to ${maximum}`)
    .max(maximum, `must be from 1 to ${maximum}`)
    .default(100);
}

export const messageSchema = z.object({ message: z.string() });

export const magasinSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  adresse: z.string().nullable(),
  ville: z.string().nullable(),
});
export const createMagasinBody = z.object({
  nom: trimmedText,
  adresse: freeText.optional(),
  ville: freeText.optional(),
});

export const produitSchema = z.object({
  id: z.number().int(),
  nom: z.string(),
  categorie: z.string().nullable(),
  prix: z.number(),
});
export const createProduitBody = z.object({
  nom: trimmedText,
  categorie: freeText.optional(),
  prix: moneyField(0.01),
});

export const stockLevelSchema = z.object({
  magasin_id: z.number().int(),
  produit_id: z.number().int(),
  quantite: z.number().int(),
  reservee: z.number().int(),
});
export const setStockBody = z.object({ quantite: quantityField(0) });

export const clientSchema = z.object({ id: z.number().int(), nom: z.string(), solde: z.number() });
export const createClientBody = z.object({
  nom: trimmedText,
  solde: moneyField(0),
});

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
export const addArticleBody = z.object({ produit_id: idField, quantite: quantityField(1) });
export const checkoutBody = z.object({ magasin_id: idField });
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
