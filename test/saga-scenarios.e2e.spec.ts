import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const venteList = z.array(z.object({ commande_id: z.string(), client_id: z.number(), total: z.number() }));

describe('the seed report scenarios, over HTTP', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('scenarios');
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

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
    expect(commande.total).toBe(0.4);
    expect(commande.historique.map((entry) => entry.event_type)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'VenteConfirmee',
    ]);
    // the stock service turns the reservation into a sale after VenteConfirmee: wait for it, not for a sleep
    await eventually(
      () => shop.stockOf(magasin, pomme),
      (stock) => stock.reservee === 0,
      { description: 'the reservation to be turned into a sale' },
    );
    expect(await shop.stockOf(magasin, pomme)).toEqual({ produit_id: pomme, quantite: 8, reservee: 0 });
    expect(await shop.stockOf(magasin, poire)).toEqual({ produit_id: poire, quantite: 4, reservee: 0 });
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
    expect(commande.historique.map((entry) => entry.event_type)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementRefuse',
      'StockLibere',
    ]);
    expect(await shop.stockOf(magasin, pomme)).toEqual({ produit_id: pomme, quantite: 5, reservee: 0 });
    expect(await shop.solde(client)).toBe(50);
  });
});
