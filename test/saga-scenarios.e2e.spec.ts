import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const venteList = z.array(z.object({ commande_id: z.string(), client_id: z.number(), total: z.number() }));
const sagaRowSchema = z.object({
  statut: z.string(),
  raison: z.string().nullable(),
  final: z.boolean(),
  version: z.number(),
  deadline_at: z.date().nullable(),
});

describeOnEachBus('the seed report scenarios, over HTTP', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('scenarios', { bus });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  /**
   * The saga actor's own row of the commande (its state, as the deadlines and the counts per state use
   * it), once it has seen the commande's last event: the read model alone could be right while it is not.
   */
  async function sagaOf(commandeId: string): Promise<z.infer<typeof sagaRowSchema>> {
    const { n: events } = z
      .object({ n: z.number() })
      .parse(
        (
          await system.choreo.pool.query('SELECT count(*)::int AS n FROM events WHERE aggregate_id = $1', [
            commandeId,
          ])
        ).rows[0],
      );
    return eventually(
      async () => {
        const row = await system.choreo.pool.query(
          'SELECT statut, raison, final, version, deadline_at FROM sagas WHERE commande_id = $1',
          [commandeId],
        );
        return row.rows[0] === undefined ? null : sagaRowSchema.parse(row.rows[0]);
      },
      (saga) => saga !== null && saga.version === events,
      { timeoutMs: 10_000, description: `the saga row of ${commandeId} at version ${events}` },
    ).then((saga) => {
      if (saga === null) throw new Error(`no saga row for ${commandeId}`);
      return saga;
    });
  }

  it('success: the sale is confirmed, stock and balance go down, one sale is recorded', async () => {
    // given a store with 10 apples at 0.10 and 5 pears at 0.20, and a client with 100.00
    const magasin = await shop.magasin();
    const pomme = await shop.produit(0.1);
    const poire = await shop.produit(0.2);
    await shop.setStock(magasin, pomme, 10);
    await shop.setStock(magasin, poire, 5);
    const client = await shop.client(100);

    // when the client buys 2 apples and 1 pear
    const commandeId = await shop.order(client, magasin, [
      [pomme, 2],
      [poire, 1],
    ]);

    // then the order ends confirmed, with the exact total 0.40
    const commande = await shop.finalCommande(commandeId);
    expect(commande.statut).toBe('vente_confirmee');
    expect(await sagaOf(commandeId)).toEqual({
      statut: 'vente_confirmee',
      raison: null,
      final: true,
      version: 4,
      deadline_at: null,
    });
    expect(commande.total).toBe(0.4);
    expect(commande.historique.map((entry) => entry.event_type)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'VenteConfirmee',
    ]);
    expect(await shop.stockSettlesAt(magasin, pomme, { quantite: 8, reservee: 0 })).toEqual({
      quantite: 8,
      reservee: 0,
    });
    expect(await shop.stockSettlesAt(magasin, poire, { quantite: 4, reservee: 0 })).toEqual({
      quantite: 4,
      reservee: 0,
    });
    expect(await shop.solde(client)).toBe(99.6);
    const ventes = venteList.parse((await system.api.get('/api/ventes')).body);
    expect(ventes.filter((vente) => vente.commande_id === commandeId)).toEqual([
      { commande_id: commandeId, client_id: client, total: 0.4 },
    ]);
  });

  it('stock insufficient: the order ends stock_indisponible, nothing is reserved or debited', async () => {
    const magasin = await shop.magasin();
    const pomme = await shop.produit(1);
    await shop.setStock(magasin, pomme, 1);
    const client = await shop.client(50);

    const commandeId = await shop.order(client, magasin, [[pomme, 2]]);

    const commande = await shop.finalCommande(commandeId);
    expect(commande.statut).toBe('stock_indisponible');
    expect(commande.raison).toBe('stock_insuffisant');
    expect(await sagaOf(commandeId)).toEqual({
      statut: 'stock_indisponible',
      raison: 'stock_insuffisant',
      final: true,
      version: 2,
      deadline_at: null,
    });
    expect(await shop.stockOf(magasin, pomme)).toEqual({ produit_id: pomme, quantite: 1, reservee: 0 });
    expect(await shop.solde(client)).toBe(50);
  });

  it('balance insufficient: payment is refused, the stock is released, the order ends annulee', async () => {
    const magasin = await shop.magasin();
    const pomme = await shop.produit(30);
    await shop.setStock(magasin, pomme, 5);
    const client = await shop.client(50);

    const commandeId = await shop.order(client, magasin, [[pomme, 2]]);

    const commande = await shop.finalCommande(commandeId);
    expect(commande.statut).toBe('annulee');
    expect(commande.raison).toBe('solde_insuffisant');
    expect(await sagaOf(commandeId)).toEqual({
      statut: 'annulee',
      raison: 'solde_insuffisant',
      final: true,
      version: 4,
      deadline_at: null,
    });
    expect(commande.historique.map((entry) => entry.event_type)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementRefuse',
      'StockLibere',
    ]);
    expect(await shop.stockOf(magasin, pomme)).toEqual({ produit_id: pomme, quantite: 5, reservee: 0 });
    expect(await shop.solde(client)).toBe(50);
  });

  it('checkout with an Idempotency-Key seen before returns the same commande and creates nothing', async () => {
    const magasin = await shop.magasin();
    const pomme = await shop.produit(1);
    await shop.setStock(magasin, pomme, 10);
    const client = await shop.client(10);
    await shop.addToCart(client, pomme, 1);

    const first = await shop.checkout(client, magasin, 'key-1');
    await shop.addToCart(client, pomme, 4); // the cart is full again: a new key would create a second order
    const again = await shop.checkout(client, magasin, 'key-1');

    expect(again).toBe(first);
    const created = await system.choreo.pool.query(
      "SELECT count(*) AS n FROM events WHERE event_type = 'CommandeCreee' AND (data->>'client_id')::int = $1",
      [client],
    );
    expect(Number(created.rows[0].n)).toBe(1);
    expect((await system.api.get(`/api/panier/${client}`)).body).toMatchObject({
      articles: [{ quantite: 4 }],
    });
    expect((await shop.finalCommande(first)).total).toBe(1);
  });

  it('keeps a cart: lines add up, can be removed, and the checkout empties it', async () => {
    const magasin = await shop.magasin();
    const pomme = await shop.produit(0.1);
    const poire = await shop.produit(0.2);
    const client = await shop.client(10);

    await shop.addToCart(client, pomme, 1);
    await shop.addToCart(client, pomme, 2);
    const withPoire = await system.api.post(`/api/panier/${client}/articles`, {
      produit_id: poire,
      quantite: 1,
    });
    expect(withPoire.body).toEqual({
      client_id: client,
      articles: [
        { produit_id: pomme, quantite: 3, prix_unitaire: 0.1, sous_total: 0.3 },
        { produit_id: poire, quantite: 1, prix_unitaire: 0.2, sous_total: 0.2 },
      ],
      total: 0.5,
    });
    const removed = await system.api.delete(`/api/panier/${client}/articles/${poire}`);
    expect(removed.body).toMatchObject({ total: 0.3 });

    await shop.checkout(client, magasin);
    expect((await system.api.get(`/api/panier/${client}`)).body).toEqual({
      client_id: client,
      articles: [],
      total: 0,
    });
  });
});
