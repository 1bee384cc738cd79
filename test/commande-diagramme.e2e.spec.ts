import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnEachBus } from './support/buses.js';
import { fetchDiagramme, highlightedStates } from './support/diagramme.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

describeOnEachBus('GET /api/commandes/:id/diagramme', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('diagramme', { bus });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it("draws the order machine with a confirmed commande's state, vente_confirmee, highlighted", async () => {
    // given a confirmed commande
    const magasin = await shop.magasin();
    const produit = await shop.produit(2.5);
    await shop.setStock(magasin, produit, 3);
    const client = await shop.client(10);
    const commandeId = await shop.order(client, magasin, [[produit, 1]]);
    expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');

    // when support asks where it stands
    const diagramme = await fetchDiagramme(system.api, commandeId);

    // then the answer is the machine's SVG with exactly that state highlighted
    expect(diagramme.status).toBe(200);
    expect(diagramme.contentType).toMatch(/^image\/svg\+xml/);
    expect(diagramme.text).toMatch(/^<\?xml[\s\S]*<svg[\s\S]*<\/svg>\s*$/);
    expect(diagramme.text).toContain('<title>paiement_refuse</title>');
    expect(highlightedStates(diagramme.text)).toEqual(['vente_confirmee']);
  });

  it('answers 404 with a message for a commande that does not exist', async () => {
    const diagramme = await fetchDiagramme(system.api, 'cmd-00000000-0000-4000-8000-000000000000');

    expect(diagramme.status).toBe(404);
    expect(diagramme.contentType).toMatch(/^application\/json/);
    expect(JSON.parse(diagramme.text)).toEqual({
      message: 'commande cmd-00000000-0000-4000-8000-000000000000 not found',
    });
  });
});
