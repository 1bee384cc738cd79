import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runConservationAudit } from '../src/audit/conservation-audit.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/*
 * What a consumer would have done had it applied an event that was never appended (a forged bus entry),
 * made here directly in the tables: the audit must see each effect that no event in the store accounts for.
 * The audit reads the database only, so one bus is enough.
 */

const auditBody = z.object({
  ok: z.boolean(),
  stock: z.object({
    ok: z.boolean(),
    ecarts: z.array(
      z.object({ magasin_id: z.number(), produit_id: z.number(), ok: z.boolean() }).passthrough(),
    ),
  }),
  effets_sans_evenement: z.array(
    z.object({
      table: z.string(),
      commande_id: z.string(),
      effet: z.string(),
      evenement_manquant: z.string(),
    }),
  ),
});

describe('the audit sees effects without their event', () => {
  let system: TestSystem;
  let shop: Shop;
  let magasin: number;
  let produit: number;
  let client: number;
  let commandeId: string;

  beforeAll(async () => {
    // every actor but ventes: a paid order waits in paiement_accepte, its 3 units reserved
    system = await TestSystem.start('audit_effects', {
      actors: ['panier', 'stock', 'client', 'saga', 'relay', 'projections'],
    });
    shop = new Shop(system.api);
    magasin = await shop.magasin();
    produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 10);
    client = await shop.client(50);
    commandeId = await shop.order(client, magasin, [[produit, 3]]);
    await eventually(
      () => shop.commande(commandeId),
      (commande) => commande.statut === 'paiement_accepte',
      { description: `${commandeId} to be paid` },
    );
    await eventually(
      async () =>
        (await system.choreo.pool.query('SELECT statut FROM sagas WHERE commande_id = $1', [commandeId]))
          .rows,
      (rows) => rows[0]?.statut === 'paiement_accepte',
      { description: 'the saga to wait in paiement_accepte' },
    );
  });
  afterAll(async () => {
    await system?.stop();
  });

  /**
   * Commits `change` in one transaction (as a consumer commits an event's effects), then runs `check`; each
   * test then changes the tables back, so that the next one starts from a clean audit.
   */
  async function whileChanged(change: string[], check: () => Promise<void>): Promise<void> {
    const connection = await system.choreo.pool.connect();
    try {
      await connection.query('BEGIN');
      for (const statement of change)
        await connection.query(statement, statement.includes('$1') ? [commandeId] : []);
      await connection.query('COMMIT');
      await check();
    } finally {
      connection.release();
    }
  }

  it('is clean while the order waits', async () => {
    const report = await runConservationAudit(system.choreo.pool);
    expect(report.effets_sans_evenement).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('reports a reservation sold without a VenteConfirmee in the store, as the stock service would sell it', async () => {
    const sell = [
      `UPDATE stock SET reservee = reservee - 3, vendue = vendue + 3
       WHERE (magasin_id, produit_id) IN (SELECT magasin_id, produit_id FROM stock_reservations WHERE commande_id = $1)`,
      `UPDATE stock_reservations SET statut = 'vendue' WHERE commande_id = $1`,
    ];
    const unsell = [
      `UPDATE stock SET reservee = reservee + 3, vendue = vendue - 3
       WHERE (magasin_id, produit_id) IN (SELECT magasin_id, produit_id FROM stock_reservations WHERE commande_id = $1)`,
      `UPDATE stock_reservations SET statut = 'reservee' WHERE commande_id = $1`,
    ];
    try {
      await whileChanged(sell, async () => {
        // the stock line: 3 sold, none justified by a sale in the store
        const report = await runConservationAudit(system.choreo.pool);
        expect(report.ok).toBe(false);
        expect(report.stock.ecarts).toEqual([
          expect.objectContaining({
            magasin_id: magasin,
            produit_id: produit,
            vendue: 3,
            vendue_justifiee: 0,
          }),
        ]);
        expect(report.effets_sans_evenement).toEqual([
          {
            table: 'stock_reservations',
            commande_id: commandeId,
            effet: 'réservation vendue',
            evenement_manquant: 'VenteConfirmee',
          },
        ]);
        // and GET /api/audit says so
        const answered = auditBody.parse((await system.api.get('/api/audit')).body);
        expect(answered.ok).toBe(false);
        expect(answered.stock.ok).toBe(false);
        expect(answered.stock.ecarts).toEqual([
          expect.objectContaining({
            magasin_id: magasin,
            produit_id: produit,
            vendue: 3,
            vendue_justifiee: 0,
            ok: false,
          }),
        ]);
        expect(answered.effets_sans_evenement).toEqual(report.effets_sans_evenement);
      });
    } finally {
      await whileChanged(unsell, async () => {});
    }
  });

  it('reports a saga moved past its commande’s events, its deadline dropped, as a forged VenteConfirmee would', async () => {
    const finish = [
      `UPDATE sagas SET statut = 'vente_confirmee', final = true, version = version + 1, deadline_at = NULL
       WHERE commande_id = $1`,
    ];
    const restore = [
      `UPDATE sagas SET statut = 'paiement_accepte', final = false, version = version - 1,
         deadline_at = now() + interval '1 minute'
       WHERE commande_id = $1`,
    ];
    try {
      await whileChanged(finish, async () => {
        const report = await runConservationAudit(system.choreo.pool);
        expect(report.ok).toBe(false);
        expect(report.effets_sans_evenement).toEqual([
          expect.objectContaining({ table: 'sagas', commande_id: commandeId }),
        ]);
      });
    } finally {
      await whileChanged(restore, async () => {});
    }
  });

  it('reports a saga whose state its events do not give (a forged event took the version a real one then had)', async () => {
    const finish = [`UPDATE sagas SET statut = 'vente_confirmee' WHERE commande_id = $1`];
    const restore = [`UPDATE sagas SET statut = 'paiement_accepte' WHERE commande_id = $1`];
    try {
      await whileChanged(finish, async () => {
        const report = await runConservationAudit(system.choreo.pool);
        expect(report.effets_sans_evenement).toEqual([
          expect.objectContaining({
            table: 'sagas',
            commande_id: commandeId,
            evenement_manquant: 'un événement qui mène de paiement_accepte à vente_confirmee',
          }),
        ]);
      });
    } finally {
      await whileChanged(restore, async () => {});
    }
  });

  it('reports a sale, a payment and a release recorded without their events', async () => {
    const record = [
      `INSERT INTO ventes (commande_id, client_id, magasin_id, total_cents) VALUES ($1, ${client}, ${magasin}, 600)`,
      `UPDATE paiements SET statut = 'rembourse' WHERE commande_id = $1`,
      `UPDATE stock_reservations SET statut = 'liberee' WHERE commande_id = $1`,
    ];
    const undo = [
      'DELETE FROM ventes WHERE commande_id = $1',
      `UPDATE paiements SET statut = 'accepte' WHERE commande_id = $1`,
      `UPDATE stock_reservations SET statut = 'reservee' WHERE commande_id = $1`,
    ];
    try {
      await whileChanged(record, async () => {
        const report = await runConservationAudit(system.choreo.pool);
        expect(report.ok).toBe(false);
        expect(
          report.effets_sans_evenement.map((effect) => [
            effect.table,
            effect.effet,
            effect.evenement_manquant,
          ]),
        ).toEqual([
          ['paiements', 'paiement rembourse', 'PaiementRembourse'],
          ['stock_reservations', 'réservation liberee', 'StockLibere'],
          ['ventes', 'vente enregistrée', 'VenteConfirmee'],
        ]);
      });
    } finally {
      await whileChanged(undo, async () => {});
    }
    expect((await runConservationAudit(system.choreo.pool)).ok).toBe(true);
  });
});
