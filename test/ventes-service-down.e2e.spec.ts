import { afterAll, beforeAll, expect, it } from 'vitest';
import { busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('the sales service is stopped while orders come in', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // every actor but ventes: payments are accepted, nobody records the sales yet
    system = await TestSystem.start('ventes_down', {
      bus,
      actors: ['panier', 'stock', 'client', 'saga', 'relay', 'projections'],
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('given orders paid while it is down, when it starts again, then the bus kept their events and every order completes', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(2.5);
    await shop.setStock(magasin, produit, 100);
    const clients = await Promise.all(Array.from({ length: 5 }, () => shop.client(20)));

    const commandes: string[] = [];
    for (const client of clients) commandes.push(await shop.order(client, magasin, [[produit, 2]]));

    // the orders stop at paiement_accepte: the events wait in the ventes-service group
    for (const commandeId of commandes) {
      await eventually(
        () => shop.commande(commandeId),
        (commande) => commande.statut === 'paiement_accepte',
        { description: `${commandeId} to be paid` },
      );
    }
    // (the read model follows the event store; the bus hands the events on at its own pace)
    const waiting = await eventually(
      () => busProbe(system).eventsWaiting('paiement.evenements', 'ventes-service'),
      (count) => count === 5,
      { description: 'the 5 PaiementAccepte to wait on the bus for ventes-service' },
    );
    expect(waiting).toBe(5);
    expect((await system.api.get('/api/ventes')).body).toEqual([]);

    // when the sales service comes back
    await system.addNode(['ventes']);

    // then every order completes, with one sale each
    for (const commandeId of commandes) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 90, reservee: 0 })).toEqual({
      quantite: 90,
      reservee: 0,
    });
  });
});
