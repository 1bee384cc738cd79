import { describe, expect, it } from 'vitest';
import type { SagaEventPayload } from '../domain/events.js';
import {
  applyEvent,
  COMMANDE_STATUTS,
  initialCommandeSnapshot,
  isFinalStatut,
  replayCommande,
  statutFromEventTypes,
} from './commande-replay.js';

const commandeCreee: SagaEventPayload = {
  event_type: 'CommandeCreee',
  data: {
    client_id: 1,
    magasin_id: 1,
    produits: [{ produit_id: 1, quantite: 1, prix_unitaire: 5, sous_total: 5 }],
    total: 5,
  },
};
const stockReserve: SagaEventPayload = {
  event_type: 'StockReserve',
  data: { client_id: 1, magasin_id: 1, produits: [{ produit_id: 1, quantite: 1 }], total: 5 },
};
const paiementAccepte: SagaEventPayload = {
  event_type: 'PaiementAccepte',
  data: { client_id: 1, magasin_id: 1, total: 5 },
};

function stockIndisponible(raison: string): SagaEventPayload {
  return {
    event_type: 'StockIndisponible',
    data: { client_id: 1, magasin_id: 1, raison, manquants: [{ produit_id: 1, demande: 1, disponible: 0 }] },
  };
}

describe('replaying a commande', () => {
  it('refuses an event that comes before the commande was created, and leaves no commande half-made', () => {
    const { snapshot, accepted } = applyEvent(null, stockReserve);
    expect(accepted).toBe(false);
    expect(snapshot.value).toBe('en_attente_stock');
  });

  it('lists the events the machine refused, with their versions, and folds the others', () => {
    const { snapshot, rejected } = replayCommande([
      { ...commandeCreee, version: 1 },
      { ...paiementAccepte, version: 2 },
      { ...stockReserve, version: 3 },
      { ...commandeCreee, version: 4 },
      { ...paiementAccepte, version: 5 },
    ]);
    expect(snapshot?.value).toBe('paiement_accepte');
    expect(rejected).toEqual([
      { event_type: 'PaiementAccepte', version: 2 },
      { event_type: 'CommandeCreee', version: 4 },
    ]);
  });

  it('keeps the reason of each failure, even when the same step was taken before with another reason', () => {
    // Steps are memoized; a reason left out of the key would hand the second commande the first one's.
    const first = applyEvent(initialCommandeSnapshot(), stockIndisponible('stock_insuffisant'));
    const second = applyEvent(initialCommandeSnapshot(), stockIndisponible('magasin_ferme'));
    expect([first.snapshot.context.raison, second.snapshot.context.raison]).toEqual([
      'stock_insuffisant',
      'magasin_ferme',
    ]);
    expect(second.snapshot.value).toBe('stock_indisponible');
  });
});

function paiementRefuse(raison: string): SagaEventPayload {
  return { event_type: 'PaiementRefuse', data: { client_id: 1, magasin_id: 1, total: 5, solde: 1, raison } };
}
function commandeExpiree(raison: string, etat: string): SagaEventPayload {
  return { event_type: 'CommandeExpiree', data: { raison, etat, delai_ms: 1_000 } };
}
const stockLibere: SagaEventPayload = {
  event_type: 'StockLibere',
  data: { magasin_id: 1, produits: [{ produit_id: 1, quantite: 1 }], raison: 'paiement_refuse' },
};
const venteConfirmee: SagaEventPayload = {
  event_type: 'VenteConfirmee',
  data: { vente_id: 1, client_id: 1, magasin_id: 1, total: 5 },
};

/** The state and the reason a commande ends with, after its creation and these events. */
function outcome(...events: SagaEventPayload[]): [string | undefined, string | null | undefined] {
  const { snapshot } = replayCommande(
    [commandeCreee, ...events].map((event, index) => ({ ...event, version: index + 1 })),
  );
  return [snapshot?.value, snapshot?.context.raison];
}

describe('the reason a commande failed', () => {
  it('is none while it goes well, and none once sold', () => {
    expect(initialCommandeSnapshot().context).toEqual({ raison: null });
    expect(outcome(stockReserve, paiementAccepte, venteConfirmee)).toEqual(['vente_confirmee', null]);
  });

  it('is the one the failing event gives, from whichever state it fails, and stays through compensation', () => {
    expect(outcome(stockIndisponible('rupture'))).toEqual(['stock_indisponible', 'rupture']);
    expect(outcome(stockReserve, paiementRefuse('solde_insuffisant'))).toEqual([
      'paiement_refuse',
      'solde_insuffisant',
    ]);
    expect(outcome(stockReserve, paiementRefuse('solde_insuffisant'), stockLibere)).toEqual([
      'annulee',
      'solde_insuffisant',
    ]);
    expect(outcome(commandeExpiree('delai_stock', 'en_attente_stock'))).toEqual(['annulee', 'delai_stock']);
    expect(outcome(stockReserve, commandeExpiree('delai_paiement', 'stock_reserve'))).toEqual([
      'liberation_stock',
      'delai_paiement',
    ]);
    expect(
      outcome(stockReserve, paiementAccepte, commandeExpiree('delai_vente', 'paiement_accepte')),
    ).toEqual(['remboursement', 'delai_vente']);
  });
});

describe('the state reached by a list of event types', () => {
  it('is none for a list that does not start with the creation of the commande', () => {
    expect(statutFromEventTypes([])).toBeNull();
    expect(statutFromEventTypes(['StockReserve'])).toBeNull();
    expect(statutFromEventTypes(['StockReserve', 'CommandeCreee'])).toBeNull();
  });

  it('skips the types it does not know and the events the state refuses, as replay does', () => {
    expect(
      statutFromEventTypes(['CommandeCreee', 'PaiementAccepte', 'Inconnu', 'StockReserve', 'CommandeCreee']),
    ).toBe('stock_reserve');
    expect(statutFromEventTypes(['CommandeCreee', 'StockReserve', 'CommandeExpiree'])).toBe(
      'liberation_stock',
    );
    expect(statutFromEventTypes(['CommandeCreee', 'StockIndisponible'])).toBe('stock_indisponible');
  });
});

describe('the final states', () => {
  it('are the sale, the stock missing and the cancellation, and no other', () => {
    expect(COMMANDE_STATUTS.filter(isFinalStatut).sort()).toEqual([
      'annulee',
      'stock_indisponible',
      'vente_confirmee',
    ]);
  });
});
