import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSagaEnvelope, type SagaEnvelope } from '../../domain/events.js';
import { CommandeCache } from './commande-cache.js';
import { rehydrate, statutOfCommande } from './commande-stream.js';

const COMMANDE = 'cmd-cache';

function envelope(version: number, event: Pick<SagaEnvelope, 'event_type' | 'data'>): SagaEnvelope {
  return parseSagaEnvelope({
    ...event,
    event_id: randomUUID(),
    aggregate_id: COMMANDE,
    version,
    position: version,
    timestamp: new Date().toISOString(),
    source: 'test',
    correlation_id: COMMANDE,
    causation_id: null,
  });
}

const produits = [{ produit_id: 1, quantite: 1, prix_unitaire: 2, sous_total: 2 }];
const creee = envelope(1, {
  event_type: 'CommandeCreee',
  data: { client_id: 1, magasin_id: 1, produits, total: 2 },
});
const reserve = envelope(2, {
  event_type: 'StockReserve',
  data: { client_id: 1, magasin_id: 1, produits: [{ produit_id: 1, quantite: 1 }], total: 2 },
});
const accepte = envelope(3, {
  event_type: 'PaiementAccepte',
  data: { client_id: 1, magasin_id: 1, total: 2 },
});
const vendue = envelope(4, {
  event_type: 'VenteConfirmee',
  data: { client_id: 1, magasin_id: 1, vente_id: 1, total: 2 },
});

describe('the commandes a process remembers', () => {
  it('follows a commande event by event, as its replay would', () => {
    const cache = new CommandeCache();
    for (const event of [creee, reserve, accepte]) cache.observe(event);

    const commande = cache.atLeast(COMMANDE, 3);
    expect(commande?.version).toBe(3);
    expect(commande?.events.map((event) => event.version)).toEqual([1, 2, 3]);
    expect(commande && statutOfCommande(commande)).toBe('paiement_accepte');
  });

  it('does not take an event whose predecessor it has not seen', () => {
    const cache = new CommandeCache();
    cache.observe(creee);
    cache.observe(accepte);

    expect(cache.atLeast(COMMANDE, 1)?.version).toBe(1);
    expect(cache.atLeast(COMMANDE, 3)).toBeUndefined();
  });

  it('answers only for a commande known up to the version asked', () => {
    const cache = new CommandeCache();
    cache.observe(creee);
    cache.observe(reserve);

    expect(cache.atLeast(COMMANDE, 2)?.version).toBe(2);
    expect(cache.atLeast(COMMANDE, 3)).toBeUndefined();
    expect(cache.atLeast('cmd-unknown', 1)).toBeUndefined();
  });

  it('keeps the longest run of events it was given, from the store or the streams', () => {
    const cache = new CommandeCache();
    cache.remember(rehydrate(COMMANDE, [creee, reserve, accepte]));
    cache.remember(rehydrate(COMMANDE, [creee]));
    cache.observe(reserve);

    expect(cache.atLeast(COMMANDE, 1)?.version).toBe(3);
  });

  it('lets a commande go once it is final, and keeps the others', () => {
    const cache = new CommandeCache();
    for (const event of [creee, reserve, accepte]) cache.observe(event);
    cache.releaseFinished([COMMANDE]);
    expect(cache.atLeast(COMMANDE, 3)?.version).toBe(3);

    cache.observe(vendue);
    cache.releaseFinished([COMMANDE]);
    expect(cache.atLeast(COMMANDE, 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not follow a commande whose creation it has not seen', () => {
    const cache = new CommandeCache();
    cache.observe(reserve);

    expect(cache.atLeast(COMMANDE, 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('takes from the store a later version of a commande it follows', () => {
    const cache = new CommandeCache();
    cache.observe(creee);
    cache.remember(rehydrate(COMMANDE, [creee, reserve]));

    expect(cache.atLeast(COMMANDE, 2)?.version).toBe(2);
  });

  it('counts a commande read again from the store as recently used', () => {
    const cache = new CommandeCache(2);
    const creation = (id: string) => ({ ...creee, aggregate_id: id, correlation_id: id });
    cache.remember(rehydrate('cmd-a', [creation('cmd-a')]));
    cache.remember(rehydrate('cmd-b', [creation('cmd-b')]));
    cache.remember(rehydrate('cmd-a', [creation('cmd-a')]));
    cache.observe(creation('cmd-c'));

    expect(cache.atLeast('cmd-a', 1)).toBeDefined();
    expect(cache.atLeast('cmd-b', 1)).toBeUndefined();
  });

  it('lets go of finished commandes among ones it does not know or has forgotten', () => {
    const cache = new CommandeCache();
    const other = 'cmd-forgotten';
    cache.observe({ ...creee, aggregate_id: other, correlation_id: other });
    cache.forget([other]);
    for (const event of [creee, reserve, accepte, vendue]) cache.observe(event);

    cache.releaseFinished(['cmd-unknown', other, COMMANDE]);

    expect(cache.atLeast(COMMANDE, 1)).toBeUndefined();
  });

  it('refuses a commande that holds more than its committed events', () => {
    const cache = new CommandeCache();
    const loaded = rehydrate(COMMANDE, [creee]);

    expect(() => cache.remember({ ...loaded, version: 2 })).toThrow(/committed events/);
  });

  it('forgets the least recently used commande beyond its capacity', () => {
    const cache = new CommandeCache(2);
    const creation = (id: string) => ({ ...creee, aggregate_id: id, correlation_id: id });
    cache.observe(creation('cmd-a'));
    cache.observe(creation('cmd-b'));
    cache.atLeast('cmd-a', 1);
    cache.observe(creation('cmd-c'));

    expect(cache.size).toBe(2);
    expect(cache.atLeast('cmd-a', 1)).toBeDefined();
    expect(cache.atLeast('cmd-b', 1)).toBeUndefined();
    expect(cache.atLeast('cmd-c', 1)).toBeDefined();
  });

  it('once told to forget a commande, follows it again only from the store', () => {
    const cache = new CommandeCache();
    cache.observe(creee);
    cache.forget([COMMANDE]);

    // a redelivered creation does not bring back what may be stale
    cache.observe(creee);
    expect(cache.atLeast(COMMANDE, 1)).toBeUndefined();
    // what the store says does
    cache.remember(rehydrate(COMMANDE, [creee, reserve]));
    cache.observe(accepte);
    expect(cache.atLeast(COMMANDE, 1)?.version).toBe(3);
  });
});
