import { z } from 'zod';
import { nonNegativeMoneySchema } from './money.js';

/** Every event type of the order saga, with the stream it is published on (see CONTRACT.md). */
export const STREAM_OF_EVENT_TYPE = {
  CommandeCreee: 'commande.evenements',
  CommandeExpiree: 'commande.evenements',
  StockReserve: 'stock.evenements',
  StockIndisponible: 'stock.evenements',
  StockLibere: 'stock.evenements',
  PaiementAccepte: 'paiement.evenements',
  PaiementRefuse: 'paiement.evenements',
  PaiementRembourse: 'paiement.evenements',
  VenteConfirmee: 'vente.evenements',
} as const;

export type SagaEventType = keyof typeof STREAM_OF_EVENT_TYPE;
export type StreamName = (typeof STREAM_OF_EVENT_TYPE)[SagaEventType];

export const SAGA_EVENT_TYPES = Object.keys(STREAM_OF_EVENT_TYPE) as SagaEventType[];
export const STREAM_NAMES: StreamName[] = [...new Set(Object.values(STREAM_OF_EVENT_TYPE))];

export function isSagaEventType(eventType: string): eventType is SagaEventType {
  return Object.hasOwn(STREAM_OF_EVENT_TYPE, eventType);
}

const id = z.number().int().positive();
const quantity = z.number().int().positive();

const orderLine = z.object({
  produit_id: id,
  quantite: quantity,
  prix_unitaire: nonNegativeMoneySchema,
  sous_total: nonNegativeMoneySchema,
});

const reservedLine = z.object({ produit_id: id, quantite: quantity });

export const eventDataSchemas = {
  CommandeCreee: z.object({
    client_id: id,
    magasin_id: id,
    produits: z.array(orderLine).min(1),
    total: nonNegativeMoneySchema,
  }),
  StockReserve: z.object({
    client_id: id,
    magasin_id: id,
    produits: z.array(reservedLine).min(1),
    total: nonNegativeMoneySchema,
  }),
  StockIndisponible: z.object({
    client_id: id,
    magasin_id: id,
    raison: z.string(),
    manquants: z.array(z.object({ produit_id: id, demande: quantity, disponible: z.number().int() })),
  }),
  StockLibere: z.object({
    magasin_id: id,
    produits: z.array(reservedLine),
    raison: z.string(),
  }),
  PaiementAccepte: z.object({
    client_id: id,
    magasin_id: id,
    total: nonNegativeMoneySchema,
  }),
  PaiementRefuse: z.object({
    client_id: id,
    magasin_id: id,
    total: nonNegativeMoneySchema,
    solde: nonNegativeMoneySchema,
    raison: z.string(),
  }),
  CommandeExpiree: z.object({
    raison: z.string(),
    /** The state the commande was stuck in. */
    etat: z.string(),
    delai_ms: z.number().int().nonnegative(),
  }),
  PaiementRembourse: z.object({
    client_id: id,
    magasin_id: id,
    total: nonNegativeMoneySchema,
    raison: z.string(),
  }),
  VenteConfirmee: z.object({
    vente_id: id,
    client_id: id,
    magasin_id: id,
    total: nonNegativeMoneySchema,
  }),
} satisfies Record<SagaEventType, z.ZodType>;

export type EventData<T extends SagaEventType> = z.infer<(typeof eventDataSchemas)[T]>;

/**
 * Facts that are not part of a saga but that the audit needs to recompute balances and stock from the
 * event store alone. They are stored, never published.
 */
export const factDataSchemas = {
  ClientCree: z.object({ client_id: id, solde: nonNegativeMoneySchema }),
  StockAjuste: z.object({
    magasin_id: id,
    produit_id: id,
    quantite: z.number().int().nonnegative(),
    delta: z.number().int(),
  }),
};
export type FactEventType = keyof typeof factDataSchemas;

export type NewFactEvent = {
  [K in FactEventType]: {
    event_type: K;
    data: z.infer<(typeof factDataSchemas)[K]>;
    source: string;
    causation_id: null;
  };
}[FactEventType];

/** An event type with its payload, narrowed together. */
export type SagaEventPayload = {
  [K in SagaEventType]: { event_type: K; data: EventData<K> };
}[SagaEventType];

/** What a service asks the event store to append; the store fills in position, version and timestamp. */
export type NewEvent<T extends SagaEventType = SagaEventType> = {
  [K in T]: {
    event_type: K;
    data: EventData<K>;
    source: string;
    causation_id: string | null;
  };
}[T];

const envelopeBase = {
  event_id: z.uuid(),
  aggregate_id: z.string().min(1),
  version: z.number().int().positive(),
  position: z.number().int().positive(),
  timestamp: z.iso.datetime({ offset: true }),
  source: z.string().min(1),
  correlation_id: z.string().min(1),
  causation_id: z.uuid().nullable(),
};

function envelopeOf<T extends SagaEventType>(eventType: T) {
  return z.object({ ...envelopeBase, event_type: z.literal(eventType), data: eventDataSchemas[eventType] });
}

/** A saga event as stored and carried on the bus, validated down to its payload. */
export const sagaEnvelopeSchema = z.discriminatedUnion('event_type', [
  envelopeOf('CommandeCreee'),
  envelopeOf('StockReserve'),
  envelopeOf('StockIndisponible'),
  envelopeOf('StockLibere'),
  envelopeOf('PaiementAccepte'),
  envelopeOf('PaiementRefuse'),
  envelopeOf('VenteConfirmee'),
  envelopeOf('CommandeExpiree'),
  envelopeOf('PaiementRembourse'),
]);

export type SagaEnvelope = z.infer<typeof sagaEnvelopeSchema>;
export type SagaEnvelopeOf<T extends SagaEventType> = Extract<SagaEnvelope, { event_type: T }>;

/** Any stored event, whatever its type (the event store also keeps non-saga facts). */
export const storedEventSchema = z.object({
  ...envelopeBase,
  event_type: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
});
export type StoredEvent = z.infer<typeof storedEventSchema>;

export function parseSagaEnvelope(event: StoredEvent): SagaEnvelope {
  return sagaEnvelopeSchema.parse(event);
}
