import { describe, expect, it } from 'vitest';
import { statutFromEventTypes } from './commande-replay.js';
import { decisiveEvents } from './decisive-events.js';

describe('the events after which a commande has ended, whatever state it was in', () => {
  it('are the sale, the missing stock and the stock released, each with its final state', () => {
    expect(Object.fromEntries(decisiveEvents())).toEqual({
      VenteConfirmee: 'vente_confirmee',
      StockIndisponible: 'stock_indisponible',
      StockLibere: 'annulee',
    });
  });

  it('give the state the fold gives, on every path of the machine that ends with one', () => {
    const decisive = decisiveEvents();
    const paths = [
      ['CommandeCreee', 'StockReserve', 'PaiementAccepte', 'VenteConfirmee'],
      ['CommandeCreee', 'StockIndisponible'],
      ['CommandeCreee', 'StockReserve', 'PaiementRefuse', 'StockLibere'],
      ['CommandeCreee', 'StockReserve', 'CommandeExpiree', 'StockLibere'],
      [
        'CommandeCreee',
        'StockReserve',
        'PaiementAccepte',
        'CommandeExpiree',
        'PaiementRembourse',
        'StockLibere',
      ],
    ];
    for (const path of paths) {
      expect(decisive.get(path.at(-1) ?? '')).toBe(statutFromEventTypes(path));
    }
  });
});
