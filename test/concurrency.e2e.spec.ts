import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('concurrent checkouts on scarce stock', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('concurrency', { bus });
    // two more processes' worth of stock and client actors compete in the same consumer groups
    await system.addNode(['stock', 'client', 'ventes']);
    await system.addNode(['stock', 'client', 'ventes']);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('never oversells: stock never goes negative and available + reserved + sold = what was stocked', async () => {
    // given 7 units of one product and 12 units of another, and 40 clients who want them
    const magasin = await shop.magasin();
    const rare = await shop.produit(3);
    const common = await shop.produit(1);
    await shop.setStock(magasin, rare, 7);
    await shop.setStock(magasin, common, 12);
    const clients = await Promise.all(
      Array.from({ length: 40 }, (_, index) => shop.client(index % 10 === 0 ? 1 : 50)),
    );
    for (const client of clients) {
      await shop.addToCart(client, rare, 1);
      await shop.addToCart(client, common, 1);
    }

    // when they all check out at once
    const commandes = await Promise.all(clients.map((client) => shop.checkout(client, magasin)));
    const finals = await Promise.all(commandes.map((commandeId) => shop.finalCommande(commandeId, 30_000)));

    // then at most 7 sales happened, and every unit is accounted for
    const sold = finals.filter((commande) => commande.statut === 'vente_confirmee').length;
    expect(sold).toBeGreaterThan(0);
    expect(sold).toBeLessThanOrEqual(7);
    const expected = [
      { produit_id: rare, quantite: 7 - sold, reservee: 0, vendue: sold },
      { produit_id: common, quantite: 12 - sold, reservee: 0, vendue: sold },
    ];
    // the stock service turns reservations into sales a moment after the sales are confirmed
    const levels = await eventually(
      async () =>
        (
          await system.choreo.pool.query(
            'SELECT produit_id, quantite, reservee, vendue FROM stock WHERE magasin_id = $1 ORDER BY produit_id',
            [magasin],
          )
        ).rows,
      (rows) => JSON.stringify(rows) === JSON.stringify(expected),
      { description: 'reservations to become sales' },
    ).catch(
      async () =>
        (
          await system.choreo.pool.query(
            'SELECT produit_id, quantite, reservee, vendue FROM stock WHERE magasin_id = $1 ORDER BY produit_id',
            [magasin],
          )
        ).rows,
    );
    expect(levels).toEqual([
      { produit_id: rare, quantite: 7 - sold, reservee: 0, vendue: sold },
      { produit_id: common, quantite: 12 - sold, reservee: 0, vendue: sold },
    ]);
    const ventes = (await system.api.get('/api/ventes')).body as unknown[];
    expect(ventes).toHaveLength(sold);
    expect(
      finals.every((commande) =>
        ['vente_confirmee', 'stock_indisponible', 'annulee'].includes(commande.statut),
      ),
    ).toBe(true);
  });
});
