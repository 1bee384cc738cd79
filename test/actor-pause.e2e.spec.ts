import { afterAll, beforeAll, expect, it } from 'vitest';
import { busProbe } from './support/bus-probe.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('an actor paused in a running process', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('actor_pause', { bus });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('given ventes paused, orders wait in paiement_accepte with their events on the bus; resumed, every order completes once', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 50);
    const client = await shop.client(100);

    // given the sales service paused in the only process that hosts it
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    expect(system.choreo.actorStates()).toContainEqual({
      actor: 'ventes',
      group: 'ventes-service',
      paused: true,
    });

    // when orders come in
    const commandes: string[] = [];
    for (let i = 0; i < 4; i++) commandes.push(await shop.order(client, magasin, [[produit, 2]]));

    // then they are paid and wait, their PaiementAccepte on the bus for ventes-service, no sale recorded
    for (const commandeId of commandes) {
      await eventually(
        () => shop.commande(commandeId),
        (commande) => commande.statut === 'paiement_accepte',
        { description: `${commandeId} to be paid` },
      );
    }
    await eventually(
      () => busProbe(system).eventsWaiting('paiement.evenements', 'ventes-service'),
      (count) => count === 4,
      { description: 'the 4 PaiementAccepte to wait for ventes-service' },
    );
    expect((await system.api.get('/api/ventes')).body).toEqual([]);

    // when it is resumed, then every order completes, with one sale each
    expect(system.choreo.resumeActor('ventes')).toBe(true);
    for (const commandeId of commandes) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 42, reservee: 0 })).toEqual({
      quantite: 42,
      reservee: 0,
    });
    expect(system.choreo.actorStates()).toContainEqual({
      actor: 'ventes',
      group: 'ventes-service',
      paused: false,
    });
    expect((await system.api.get('/api/ventes')).body).toHaveLength(4);
  });

  it('says so when this process hosts no consumer of that name', async () => {
    expect(await system.choreo.pauseActor('relay')).toBe(false);
    expect(system.choreo.resumeActor('projections')).toBe(false);
  });
});
