import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { ACTOR_NAMES } from '../src/config.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const createdClient = z.object({ id: z.number(), token: z.string() });

describeOnEachBus('a commande read before the read model has it', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // every actor but the read model's, which joins later
    system = await TestSystem.start('read_your_checkout', {
      bus,
      actors: ACTOR_NAMES.filter((actor) => actor !== 'projections'),
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  const rowsInReadModel = async (commandeId: string) =>
    z
      .object({ rows: z.number() })
      .parse(
        (
          await system.choreo.pool.query(
            'SELECT count(*)::int AS rows FROM commandes_vue WHERE commande_id = $1',
            [commandeId],
          )
        ).rows[0],
      ).rows;

  it('is answered from its events, as the read model will answer it, never older than its events, and hidden from other clients', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(2.5);
    await shop.setStock(magasin, produit, 10);
    const [alice, bob] = [
      createdClient.parse((await system.api.post('/api/clients', { nom: 'Alice', solde: 100 })).body),
      createdClient.parse((await system.api.post('/api/clients', { nom: 'Bob', solde: 100 })).body),
    ];

    // given no process running the read model
    // when Alice checks out, then her commande answers at once and follows the saga to its end
    const aliceApi = system.api.as(alice.token);
    expect(
      (await aliceApi.post(`/api/panier/${alice.id}/articles`, { produit_id: produit, quantite: 2 })).status,
    ).toBe(200);
    const checkout = await aliceApi.post(`/api/panier/${alice.id}/checkout`, { magasin_id: magasin });
    expect(checkout.status, checkout.text).toBe(202);
    const commandeId = z.object({ commande_id: z.string() }).parse(checkout.body).commande_id;
    const first = await aliceApi.get(`/api/commandes/${commandeId}`);
    expect(first.status, first.text).toBe(200);
    const fromEvents = await eventually(
      async () => (await aliceApi.get(`/api/commandes/${commandeId}`)).body,
      (body) => z.object({ statut: z.string() }).parse(body).statut === 'vente_confirmee',
      { description: 'the commande, read from its events, to reach vente_confirmee' },
    );
    expect(await rowsInReadModel(commandeId)).toBe(0);
    expect(fromEvents).toMatchObject({
      commande_id: commandeId,
      client_id: alice.id,
      magasin_id: magasin,
      total: 5,
      raison: null,
      produits: [{ produit_id: produit, quantite: 2, prix_unitaire: 2.5, sous_total: 5 }],
    });
    expect(
      z
        .object({ historique: z.array(z.object({ event_type: z.string() })) })
        .parse(fromEvents)
        .historique.map((entry) => entry.event_type),
    ).toEqual(['CommandeCreee', 'StockReserve', 'PaiementAccepte', 'VenteConfirmee']);

    // another client gets what an unknown id gets
    const unknown = await system.api
      .as(bob.token)
      .get('/api/commandes/cmd-00000000-0000-4000-8000-000000000000');
    const other = await system.api.as(bob.token).get(`/api/commandes/${commandeId}`);
    expect(other.status).toBe(404);
    expect(unknown.status).toBe(404);

    // when the read model catches up, it answers exactly what the events did
    await system.addNode(['projections']);
    await eventually(
      () => rowsInReadModel(commandeId),
      (rows) => rows === 1,
      { description: 'the read model to have the commande' },
    );
    expect((await aliceApi.get(`/api/commandes/${commandeId}`)).body).toEqual(fromEvents);

    // a read model row behind the commande's events (as between two of the projection's batches) is
    // passed over: the commande never goes back to an earlier state for its reader
    await system.choreo.pool.query(
      `UPDATE commandes_vue SET statut = 'paiement_accepte', version = 3,
              historique = historique - 3
       WHERE commande_id = $1`,
      [commandeId],
    );
    expect((await aliceApi.get(`/api/commandes/${commandeId}`)).body).toEqual(fromEvents);
  });
});
