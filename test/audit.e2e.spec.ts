import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const auditSchema = z.object({
  ok: z.boolean(),
  stock: z.object({ ok: z.boolean(), lignes: z.number(), ecarts: z.array(z.unknown()) }),
  argent: z.object({
    ok: z.boolean(),
    clients: z.number(),
    ecarts: z.array(z.object({ client_id: z.number() }).passthrough()),
  }),
  commandes: z.object({
    total: z.number(),
    finales: z.number(),
    en_cours: z.array(
      z.object({ commande_id: z.string(), statut: z.string(), depuis: z.string(), age_ms: z.number() }),
    ),
  }),
});

describeOnEachBus('the conservation audit', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('audit', {
      bus,
      actors: ['panier', 'stock', 'client', 'saga', 'relay', 'projections'],
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  async function audit() {
    return auditSchema.parse((await system.api.get('/api/audit')).body);
  }

  it('is clean after every kind of order, and lists the orders still in flight with their age', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(2.5);
    await shop.setStock(magasin, produit, 5);
    await shop.setStock(magasin, produit, 8); // adjusted twice: the audit sums the deltas
    const rich = await shop.client(100);
    const poor = await shop.client(1);
    // the sales service is not running: paid orders wait in paiement_accepte
    const paid = await shop.order(rich, magasin, [[produit, 2]]);
    const refused = await shop.order(poor, magasin, [[produit, 1]]);
    const unavailable = await shop.order(rich, magasin, [[produit, 50]]);
    await eventually(
      () => shop.commande(paid),
      (commande) => commande.statut === 'paiement_accepte',
    );
    await shop.finalCommande(refused);
    await shop.finalCommande(unavailable);

    const report = await audit();

    expect(report.stock).toMatchObject({ ok: true, ecarts: [] });
    expect(report.argent).toMatchObject({ ok: true, ecarts: [] });
    expect(report.ok).toBe(true);
    expect(report.commandes).toMatchObject({ total: 3, finales: 2 });
    expect(report.commandes.en_cours).toEqual([
      {
        commande_id: paid,
        statut: 'paiement_accepte',
        depuis: expect.any(String),
        age_ms: expect.any(Number),
      },
    ]);
  });

  it('reports a balance changed behind the event store’s back', async () => {
    const client = await shop.client(10);
    await system.choreo.pool.query('UPDATE clients SET solde_cents = solde_cents + 100 WHERE id = $1', [
      client,
    ]);

    const report = await audit();

    expect(report.ok).toBe(false);
    expect(report.argent.ecarts).toEqual([
      expect.objectContaining({ client_id: client, solde_attendu: 10, solde: 11, ok: false }),
    ]);
    await system.choreo.pool.query('UPDATE clients SET solde_cents = solde_cents - 100 WHERE id = $1', [
      client,
    ]);
  });

  it('reports stock changed behind the event store’s back', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 3);
    await system.choreo.pool.query(
      'UPDATE stock SET quantite = 4 WHERE magasin_id = $1 AND produit_id = $2',
      [magasin, produit],
    );

    const report = await audit();

    expect(report.stock.ok).toBe(false);
    expect(report.stock.ecarts).toEqual([
      expect.objectContaining({
        magasin_id: magasin,
        produit_id: produit,
        quantite_attendue: 3,
        quantite: 4,
      }),
    ]);
  });
});
