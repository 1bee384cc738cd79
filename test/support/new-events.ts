import type { NewEvent, SagaEventType } from '../../src/domain/events.js';

/**
 * One event of each type, as its service would append it, for a commande of one line (two units at 5,
 * client 1, store 1): what a test appends to a stream to put a commande in a given state.
 */
export const NEW_EVENTS: { [K in SagaEventType]: NewEvent<K> } = {
  CommandeCreee: {
    event_type: 'CommandeCreee',
    source: 'panier-service',
    causation_id: null,
    data: {
      client_id: 1,
      magasin_id: 1,
      produits: [{ produit_id: 1, quantite: 2, prix_unitaire: 5, sous_total: 10 }],
      total: 10,
    },
  },
  StockReserve: {
    event_type: 'StockReserve',
    source: 'stock-service',
    causation_id: null,
    data: { client_id: 1, magasin_id: 1, produits: [{ produit_id: 1, quantite: 2 }], total: 10 },
  },
  StockIndisponible: {
    event_type: 'StockIndisponible',
    source: 'stock-service',
    causation_id: null,
    data: {
      client_id: 1,
      magasin_id: 1,
      raison: 'stock_insuffisant',
      manquants: [{ produit_id: 1, demande: 2, disponible: 0 }],
    },
  },
  StockLibere: {
    event_type: 'StockLibere',
    source: 'stock-service',
    causation_id: null,
    data: { magasin_id: 1, produits: [{ produit_id: 1, quantite: 2 }], raison: 'paiement_refuse' },
  },
  PaiementAccepte: {
    event_type: 'PaiementAccepte',
    source: 'client-service',
    causation_id: null,
    data: { client_id: 1, magasin_id: 1, total: 10 },
  },
  PaiementRefuse: {
    event_type: 'PaiementRefuse',
    source: 'client-service',
    causation_id: null,
    data: { client_id: 1, magasin_id: 1, total: 10, solde: 3, raison: 'solde_insuffisant' },
  },
  PaiementRembourse: {
    event_type: 'PaiementRembourse',
    source: 'client-service',
    causation_id: null,
    data: { client_id: 1, magasin_id: 1, total: 10, raison: 'delai_depasse' },
  },
  VenteConfirmee: {
    event_type: 'VenteConfirmee',
    source: 'ventes-service',
    causation_id: null,
    data: { vente_id: 1, client_id: 1, magasin_id: 1, total: 10 },
  },
  CommandeExpiree: {
    event_type: 'CommandeExpiree',
    source: 'commande-saga',
    causation_id: null,
    data: { raison: 'delai_depasse', etat: 'stock_reserve', delai_ms: 90_000 },
  },
};
