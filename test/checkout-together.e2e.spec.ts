import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStream } from '../src/persistence/event-store.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/** Checkouts that arrive together are written together; each must still get exactly its own answer. */
describe('checkouts arriving at the same moment', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('checkout-together', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('give each client a commande made of its own cart, and refuse only the checkouts that are wrong', async () => {
    // given 12 clients with different carts, one of whom checks out twice at once, a client that does not
    // exist, and a client who names a store that does not exist
    const magasin = await shop.magasin();
    const produits = [await shop.produit(2), await shop.produit(3.5), await shop.produit(10)];
    const clients = await Promise.all(Array.from({ length: 12 }, () => shop.client(100)));
    for (const [index, client] of clients.entries()) {
      await shop.addToCart(client, produits[index % 3] as number, index + 1);
    }
    const [twice, wrongStore] = clients as [number, number];
    const attempts = [
      ...clients.map((client) => ({ client, magasin })),
      { client: twice, magasin },
      { client: 999_999, magasin },
    ];
    attempts[1] = { client: wrongStore, magasin: 999_999 };

    // when they all check out at once
    const replies = await Promise.all(
      attempts.map(({ client, magasin: magasinId }) =>
        system.api.post(`/api/panier/${client}/checkout`, { magasin_id: magasinId }),
      ),
    );

    // then the wrong store and the unknown client get 404, the double checkout one 202 and one 409
    const statusOf = (index: number) => replies[index]?.status;
    expect(statusOf(1)).toBe(404);
    expect(statusOf(attempts.length - 1)).toBe(404);
    expect([statusOf(0), statusOf(attempts.length - 2)].sort()).toEqual([202, 409]);
    expect((await system.api.get(`/api/panier/${wrongStore}`)).body).toMatchObject({
      articles: [{ produit_id: produits[1], quantite: 2 }],
    });

    // and every other client has its own commande, holding exactly what its cart held
    const accepted = replies.flatMap((reply, index) =>
      reply.status === 202
        ? [{ index, commandeId: (reply.body as { commande_id: string }).commande_id }]
        : [],
    );
    expect(accepted).toHaveLength(11);
    expect(new Set(accepted.map((a) => a.commandeId)).size).toBe(11);
    for (const { index, commandeId } of accepted) {
      const clientIndex = index === attempts.length - 2 ? 0 : index;
      const [created, ...rest] = await readStream(system.choreo.pool, commandeId);
      expect(rest).toEqual([]);
      expect(created?.event_type).toBe('CommandeCreee');
      expect(created?.data).toMatchObject({
        client_id: clients[clientIndex],
        magasin_id: magasin,
        produits: [{ produit_id: produits[clientIndex % 3], quantite: clientIndex + 1 }],
      });
    }
  });
});
