import { assign, setup } from 'xstate';

/**
 * The life of one commande. Pure: no invoke, no after, no I/O. Services decide and append events;
 * this machine says which event each state accepts, and replay folds events through it.
 */
export type CommandeMachineEvent =
  | { type: 'StockReserve' }
  | { type: 'StockIndisponible'; raison: string }
  | { type: 'PaiementAccepte' }
  | { type: 'PaiementRefuse'; raison: string }
  | { type: 'StockLibere' }
  | { type: 'VenteConfirmee' }
  | { type: 'CommandeExpiree'; raison: string }
  | { type: 'PaiementRembourse' };

export interface CommandeContext {
  /** Why the commande failed, when it did. */
  raison: string | null;
}

export const commandeMachine = setup({
  types: {
    context: {} as CommandeContext,
    events: {} as CommandeMachineEvent,
  },
  actions: {
    recordFailureReason: assign({
      raison: ({ context, event }) => ('raison' in event ? event.raison : context.raison),
    }),
  },
}).createMachine({
  id: 'commande',
  initial: 'en_attente_stock',
  context: { raison: null },
  states: {
    // A commande waiting on a service past its deadline expires (CommandeExpiree, from the deadline
    // scheduler) and is compensated: what was taken is given back, then it ends annulee.
    en_attente_stock: {
      on: {
        StockReserve: 'stock_reserve',
        StockIndisponible: { target: 'stock_indisponible', actions: 'recordFailureReason' },
        CommandeExpiree: { target: 'annulee', actions: 'recordFailureReason' },
      },
    },
    stock_reserve: {
      on: {
        PaiementAccepte: 'paiement_accepte',
        PaiementRefuse: { target: 'paiement_refuse', actions: 'recordFailureReason' },
        CommandeExpiree: { target: 'liberation_stock', actions: 'recordFailureReason' },
      },
    },
    stock_indisponible: { type: 'final', tags: ['echec'] },
    paiement_accepte: {
      on: {
        VenteConfirmee: 'vente_confirmee',
        CommandeExpiree: { target: 'remboursement', actions: 'recordFailureReason' },
      },
    },
    paiement_refuse: {
      tags: ['compensation'],
      on: { StockLibere: 'annulee' },
    },
    remboursement: {
      tags: ['compensation'],
      on: { PaiementRembourse: 'liberation_stock' },
    },
    liberation_stock: {
      tags: ['compensation'],
      on: { StockLibere: 'annulee' },
    },
    annulee: { type: 'final', tags: ['echec'] },
    vente_confirmee: { type: 'final', tags: ['succes'] },
  },
});
