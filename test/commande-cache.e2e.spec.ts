import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientActor } from '../src/actors/client/client-actor.js';
import { CommandeCache } from '../src/actors/commande/commande-cache.js';
import { handleBatchOnce, handleOnce } from '../src/actors/service-actor.js';
import { stockActor } from '../src/actors/stock/stock-actor.js';
import { ventesActor } from '../src/actors/ventes/ventes-actor.js';
import { VersionConflictError } from '../src/domain/errors.js';
import type { SagaEnvelope } from '../src/domain/events.js';
import { appendToStream } from '../src/persistence/event-store.js';
import { eventOf, eventTypesOf } from './support/commande-events.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/**
 * A service reads a commande from what its process remembers when it can. What it remembers can be behind
 * the event store (another process appended since): the service must then decide on the store, never on
 * the stale state.
 */
describe('a service remembering a commande that has moved on since', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test hands each event to the services itself.
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('commande-cache', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  /** One unit of a product at 5.00, the only one in its store, ordered by the client. */
  async function orderOfTheLastUnit(
    clientId: number,
  ): Promise<{ magasin: number; produit: number; commandeId: string; creee: SagaEnvelope }> {
    const magasin = await shop.magasin();
    const produit = await shop.produit(5);
    await shop.setStock(magasin, produit, 1);
    const commandeId = await shop.order(clientId, magasin, [[produit, 1]]);
    const creee = await eventOf(system.choreo.pool, commandeId, 'CommandeCreee');
    return { magasin, produit, commandeId, creee };
  }

  /** A commande whose stock is reserved, as this process saw it, then expired by another process. */
  async function reservedThenExpiredElsewhere(
    cache: CommandeCache,
    clientId: number,
  ): Promise<{ commandeId: string; reserve: SagaEnvelope }> {
    const { commandeId, creee } = await orderOfTheLastUnit(clientId);
    expect(await handleOnce(system.choreo.pool, stockActor, creee, cache)).toBe('applied');
    const reserve = await eventOf(system.choreo.pool, commandeId, 'StockReserve');
    await expireElsewhere(commandeId, 2, 'stock_reserve');
    return { commandeId, reserve };
  }

  async function expireElsewhere(commandeId: string, version: number, etat: string): Promise<void> {
    await appendToStream(system.choreo.pool, commandeId, version, [
      {
        event_type: 'CommandeExpiree',
        source: 'commande-saga',
        causation_id: null,
        data: { raison: 'delai_depasse', etat, delai_ms: 1 },
      },
    ]);
  }

  it('follows a commande from service to service, and lets it go once sold', async () => {
    // given an order, and the four services of one process sharing a cache
    const cache = new CommandeCache();
    const { magasin, produit, commandeId } = await orderOfTheLastUnit(await shop.client(100));
    const next = async (eventType: string) => eventOf(system.choreo.pool, commandeId, eventType);

    // when each event goes to the service that reacts to it
    expect(await handleOnce(system.choreo.pool, stockActor, await next('CommandeCreee'), cache)).toBe(
      'applied',
    );
    expect(await handleOnce(system.choreo.pool, clientActor, await next('StockReserve'), cache)).toBe(
      'applied',
    );
    expect(cache.atLeast(commandeId, 2)?.version).toBe(2);
    expect(await handleOnce(system.choreo.pool, ventesActor, await next('PaiementAccepte'), cache)).toBe(
      'applied',
    );
    expect(await handleOnce(system.choreo.pool, stockActor, await next('VenteConfirmee'), cache)).toBe(
      'applied',
    );

    // then the sale is complete, and the cache holds nothing of the finished commande
    expect(await shop.stockOf(magasin, produit)).toMatchObject({ quantite: 0, reservee: 0 });
    expect(cache.atLeast(commandeId, 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('loses its append to the newer event, then, delivered again, settles on the store', async () => {
    // given a commande this process saw created, then expired by another process before any reservation
    const cache = new CommandeCache();
    const { magasin, produit, commandeId, creee } = await orderOfTheLastUnit(await shop.client(100));
    cache.observe(creee);
    await expireElsewhere(commandeId, 1, 'en_attente_stock');

    // when the stock service handles the creation, then its reservation loses the race
    await expect(handleOnce(system.choreo.pool, stockActor, creee, cache)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    // and delivered again (the consumer retries a lost race), it is refused on the expired commande
    expect(await handleOnce(system.choreo.pool, stockActor, creee, cache)).toBe('refused');
    expect(await shop.stockOf(magasin, produit)).toMatchObject({ quantite: 1, reservee: 0 });
    expect(await eventTypesOf(system.choreo.pool, commandeId)).toEqual(['CommandeCreee', 'CommandeExpiree']);
  });

  it('rolls a batch back whole, and each event then settles on the store', async () => {
    // given one commande expired behind the cache's back, and one the cache knows as it is
    const cache = new CommandeCache();
    const client = await shop.client(100);
    const stale = await reservedThenExpiredElsewhere(cache, client);
    const { commandeId: current, creee } = await orderOfTheLastUnit(client);
    expect(await handleOnce(system.choreo.pool, stockActor, creee)).toBe('applied');
    const reserve = await eventOf(system.choreo.pool, current, 'StockReserve');
    cache.observe(creee);
    cache.observe(reserve);

    // when the client service gets both StockReserve in one batch, then nothing of it is kept
    await expect(
      handleBatchOnce(system.choreo.pool, clientActor, [stale.reserve, reserve], cache),
    ).rejects.toBeInstanceOf(VersionConflictError);
    expect(await shop.solde(client)).toBe(100);
    expect(cache.atLeast(stale.commandeId, 1)).toBeUndefined();

    // and one by one, the expired commande is refused and the other one is paid
    expect(await handleOnce(system.choreo.pool, clientActor, stale.reserve, cache)).toBe('refused');
    expect(await handleOnce(system.choreo.pool, clientActor, reserve, cache)).toBe('applied');
    expect(await shop.solde(client)).toBe(95);
    expect(await eventTypesOf(system.choreo.pool, current)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
    ]);
  });
});
