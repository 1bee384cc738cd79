import { describe, expect, it } from 'vitest';
import { eventDataSchemas, SAGA_EVENT_TYPES, type SagaEventPayload } from '../domain/events.js';
import { type CommandeMachineEvent, commandeMachine } from './commande.machine.js';
import { type CommandePath, commandePaths } from './commande-paths.js';
import { applyEvent, COMMANDE_STATUTS, type CommandeSnapshot, replayCommande } from './commande-replay.js';
import { definedTransitions, transitionsTaken } from './machine-transitions.js';

const client_id = 42;
const magasin_id = 1;

const commandeCreee: SagaEventPayload = {
  event_type: 'CommandeCreee',
  data: {
    client_id,
    magasin_id,
    produits: [{ produit_id: 1, quantite: 2, prix_unitaire: 5, sous_total: 10 }],
    total: 10,
  },
};

/** The stored event a service would append for a machine event, with the same `raison`. */
function sagaEventOf(event: CommandeMachineEvent): SagaEventPayload {
  const produits = [{ produit_id: 1, quantite: 2 }];
  switch (event.type) {
    case 'StockReserve':
      return { event_type: event.type, data: { client_id, magasin_id, produits, total: 10 } };
    case 'StockIndisponible':
      return {
        event_type: event.type,
        data: {
          client_id,
          magasin_id,
          raison: event.raison,
          manquants: [{ produit_id: 1, demande: 2, disponible: 0 }],
        },
      };
    case 'PaiementAccepte':
      return { event_type: event.type, data: { client_id, magasin_id, total: 10 } };
    case 'PaiementRefuse':
      return {
        event_type: event.type,
        data: { client_id, magasin_id, total: 10, solde: 3, raison: event.raison },
      };
    case 'StockLibere':
      return { event_type: event.type, data: { magasin_id, produits, raison: 'paiement_refuse' } };
    case 'VenteConfirmee':
      return { event_type: event.type, data: { vente_id: 7, client_id, magasin_id, total: 10 } };
    case 'CommandeExpiree':
      return {
        event_type: event.type,
        data: { raison: event.raison, etat: 'stock_reserve', delai_ms: 1000 },
      };
    case 'PaiementRembourse':
      return { event_type: event.type, data: { client_id, magasin_id, total: 10, raison: 'delai_depasse' } };
    default: {
      const unreachable: never = event;
      throw new Error(`no saga event for ${JSON.stringify(unreachable)}`);
    }
  }
}

/** One stored event of every saga type, to throw at a state that may not accept it. */
const ANY_SAGA_EVENT: SagaEventPayload[] = [
  commandeCreee,
  sagaEventOf({ type: 'StockReserve' }),
  sagaEventOf({ type: 'StockIndisponible', raison: 'stock_insuffisant' }),
  sagaEventOf({ type: 'PaiementAccepte' }),
  sagaEventOf({ type: 'PaiementRefuse', raison: 'solde_insuffisant' }),
  sagaEventOf({ type: 'StockLibere' }),
  sagaEventOf({ type: 'VenteConfirmee' }),
  sagaEventOf({ type: 'CommandeExpiree', raison: 'delai_depasse' }),
  sagaEventOf({ type: 'PaiementRembourse' }),
];

function replayPath(path: CommandePath): CommandeSnapshot {
  const events = [commandeCreee, ...path.machineEvents.map(sagaEventOf)].map((event, i) => ({
    ...event,
    version: i + 1,
  }));
  const { snapshot, rejected } = replayCommande(events);
  expect(rejected).toEqual([]);
  if (snapshot === null) throw new Error('a replay that starts with CommandeCreee yields a snapshot');
  return snapshot;
}

/** What the machine definition says a state accepts; deliberately not `snapshot.can`, which replay itself uses. */
function definedEvents(state: string): string[] {
  return commandeMachine.root.states[state]?.ownEvents ?? [];
}

// Computed as the file loads, to name one test per path. A traversal that fails must fail a test, not
// leave the file with none (mutation testing, for one, counts a file that does not load as no test failed).
let paths: CommandePath[] = [];
let pathsFailure: unknown = null;
try {
  paths = commandePaths();
} catch (error) {
  pathsFailure = error;
}
console.log(`commande machine: ${paths.length} paths (shortest and simple, deduplicated)`);

// The title must not depend on the machine: mutation testing selects tests by the names they had on the
// unmutated code, and a title that changed with the machine would let a mutant skip every test under it.
describe('commande machine, model-based', () => {
  // One test per path, named after its event sequence, e.g. `CommandeCreee → StockReserve ⇒ stock_reserve`
  // (a loop rather than it.each, whose `$name` would be quoted and truncated).
  for (const path of paths) {
    it(path.name, () => {
      const reached = replayPath(path);
      expect(reached.value).toBe(path.finalState);
      expect(reached.context).toEqual(path.finalContext);

      // Whatever the state does not accept must leave it exactly as it was.
      const accepted = definedEvents(path.finalState);
      const refused = ANY_SAGA_EVENT.filter((event) => !accepted.includes(event.event_type));
      expect(refused.length).toBeGreaterThan(0);
      for (const event of refused) {
        const { snapshot, accepted: wasAccepted } = applyEvent(reached, event);
        const where = `${event.event_type} in ${path.finalState}`;
        expect(wasAccepted, where).toBe(false);
        expect(snapshot.value, where).toBe(reached.value);
        expect(snapshot.context, where).toEqual(reached.context);
      }
    });
  }

  it('finds paths through the machine', () => {
    if (pathsFailure !== null) throw pathsFailure;
    expect(paths.length).toBeGreaterThan(0);
  });

  it('reaches every state of the machine at the end of some path', () => {
    const reached = new Set<string>(paths.map((path) => path.finalState));
    expect(Object.keys(commandeMachine.root.states).filter((state) => !reached.has(state))).toEqual([]);
  });

  it('takes every transition of the machine in some path', () => {
    const taken = new Set(paths.flatMap(transitionsTaken));
    expect(definedTransitions(commandeMachine).filter((transition) => !taken.has(transition))).toEqual([]);
  });

  it('knows the same states as COMMANDE_STATUTS, which the API and projections report', () => {
    expect([...COMMANDE_STATUTS].sort()).toEqual(Object.keys(commandeMachine.root.states).sort());
  });

  it('uses sample stored events that satisfy their schemas', () => {
    expect(ANY_SAGA_EVENT.map((event) => event.event_type).sort()).toEqual([...SAGA_EVENT_TYPES].sort());
    for (const event of ANY_SAGA_EVENT) {
      expect(() => eventDataSchemas[event.event_type].parse(event.data), event.event_type).not.toThrow();
    }
  });
});
