import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { commandeMachine } from './commande.machine.js';
import { decisiveEvents } from './decisive-events.js';
import { definedTransitions, transitionKey, transitionsTaken } from './machine-transitions.js';

/** A machine with a transition that has no target (it stays where it is), which the order machine lacks. */
const withSelfLoop = createMachine({
  id: 'porte',
  initial: 'fermee',
  states: {
    fermee: { on: { Ouvrir: 'ouverte', Sonner: {} } },
    ouverte: { on: { Sonner: 'fin' } },
    fin: { type: 'final' },
  },
});

/** The transitions as the order machine's configuration writes them, read without XState's help. */
function configuredTransitions(): string[] {
  const states = commandeMachine.config.states ?? {};
  return Object.entries(states).flatMap(([source, state]) =>
    Object.entries(state?.on ?? {}).map(([event, definition]) => {
      const target = typeof definition === 'string' ? definition : (definition as { target: string }).target;
      return `${source} --${event}--> ${target}`;
    }),
  );
}

describe('the transitions of a machine', () => {
  it('are named source --Event--> target', () => {
    expect(transitionKey('stock_reserve', 'PaiementAccepte', 'paiement_accepte')).toBe(
      'stock_reserve --PaiementAccepte--> paiement_accepte',
    );
  });

  it('are every transition the order machine configures, and no other', () => {
    const defined = definedTransitions(commandeMachine);
    expect(defined.length).toBeGreaterThan(0);
    expect([...defined].sort()).toEqual(configuredTransitions().sort());
  });

  it('count a transition without a target as a loop on its own state', () => {
    expect(definedTransitions(withSelfLoop).sort()).toEqual([
      'fermee --Ouvrir--> ouverte',
      'fermee --Sonner--> fermee',
      'ouverte --Sonner--> fin',
    ]);
  });

  it('are taken one per event of a walk, from each state to the next', () => {
    expect(
      transitionsTaken({
        states: ['en_attente_stock', 'stock_reserve', 'paiement_refuse'],
        events: ['StockReserve', 'PaiementRefuse'],
      }),
    ).toEqual([
      'en_attente_stock --StockReserve--> stock_reserve',
      'stock_reserve --PaiementRefuse--> paiement_refuse',
    ]);
  });
});

describe('a decisive event', () => {
  it('is not one that leaves some state where it is, even if it ends the machine from another', () => {
    // Sonner ends the machine from `ouverte` but keeps `fermee` as it is: its last event says nothing.
    expect(Object.fromEntries(decisiveEvents(withSelfLoop))).toEqual({});
  });
});
