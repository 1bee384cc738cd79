import { afterAll, beforeAll, expect, it } from 'vitest';
import { isSagaEventType } from '../src/domain/events.js';
import { describeOnEachBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { type MetricsSnapshot, scrapeMetrics } from './support/prometheus-text.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const FINAL_ETATS = ['stock_indisponible', 'annulee', 'vente_confirmee'];

/** Nothing left in flight: every commande final, every event published, delivered and acknowledged. */
function isSettled(metrics: MetricsSnapshot, commandes: number): boolean {
  const finals = FINAL_ETATS.reduce((total, etat) => total + metrics.sum('commandes_par_etat', { etat }), 0);
  const groups = [...metrics.select('consumer_group_pending'), ...metrics.select('consumer_group_lag')];
  return (
    finals === commandes &&
    metrics.select('relay_lag_events').length === 1 &&
    metrics.sum('relay_lag_events') === 0 &&
    groups.length > 0 &&
    groups.every((sample) => sample.value === 0)
  );
}

describeOnEachBus('the metrics tell what the orders did', (bus) => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('metrics_match', { bus });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('3 sales, 2 orders short of stock, 1 short of balance: the counters and gauges say exactly that', async () => {
    // given a store with plenty of one product and a single unit of another, a rich client and a poor one
    const magasin = await shop.magasin();
    const courant = await shop.produit(10);
    const rare = await shop.produit(10);
    await shop.setStock(magasin, courant, 100);
    await shop.setStock(magasin, rare, 1);
    const riche = await shop.client(1_000);
    const pauvre = await shop.client(5);

    // when 3 orders can be served, 2 ask for more than the stock and 1 costs more than the balance
    const commandes: string[] = [];
    for (let i = 0; i < 3; i++) commandes.push(await shop.order(riche, magasin, [[courant, 1]]));
    for (let i = 0; i < 2; i++) commandes.push(await shop.order(riche, magasin, [[rare, 2]]));
    commandes.push(await shop.order(pauvre, magasin, [[courant, 1]]));
    const finals = await Promise.all(commandes.map((id) => shop.finalCommande(id, 60_000)));
    expect(finals.map((commande) => [commande.statut, commande.raison])).toEqual([
      ['vente_confirmee', null],
      ['vente_confirmee', null],
      ['vente_confirmee', null],
      ['stock_indisponible', 'stock_insuffisant'],
      ['stock_indisponible', 'stock_insuffisant'],
      ['annulee', 'solde_insuffisant'],
    ]);

    // then, once nothing is in flight any more, /metrics counts each outcome exactly once
    await eventually(
      () => scrapeMetrics(system.api),
      (metrics) => isSettled(metrics, commandes.length),
      { timeoutMs: 60_000, intervalMs: 100, description: 'the system to settle' },
    );
    const metrics = await scrapeMetrics(system.api);

    expect(metrics.sum('saga_commande_succes_total')).toBe(3);
    expect(metrics.byLabel('saga_commande_echec_total', 'raison')).toEqual({
      stock_insuffisant: 2,
      solde_insuffisant: 1,
    });
    expect(metrics.byLabel('commande_etat_total', 'etat')).toEqual({
      en_attente_stock: 6,
      stock_reserve: 4,
      stock_indisponible: 2,
      paiement_accepte: 3,
      paiement_refuse: 1,
      annulee: 1,
      vente_confirmee: 3,
    });
    expect(metrics.byLabel('saga_duree_ms_count', 'statut')).toEqual({
      vente_confirmee: 3,
      stock_indisponible: 2,
      annulee: 1,
    });
    expect(metrics.byLabel('commandes_par_etat', 'etat')).toEqual({
      en_attente_stock: 0,
      stock_reserve: 0,
      stock_indisponible: 2,
      paiement_accepte: 0,
      paiement_refuse: 0,
      annulee: 1,
      vente_confirmee: 3,
      remboursement: 0,
      liberation_stock: 0,
    });
    expect(metrics.sum('commandes_non_finales')).toBe(0);
    expect(metrics.sum('commandes_bloquees')).toBe(0);

    const events: Record<string, number> = {};
    for (const { labels, value } of metrics.select('event_store_events_total')) {
      if (labels.event_type && isSagaEventType(labels.event_type)) {
        events[`${labels.event_type} from ${labels.source}`] = value;
      }
    }
    expect(events).toEqual({
      'CommandeCreee from panier-service': 6,
      'StockReserve from stock-service': 4,
      'StockIndisponible from stock-service': 2,
      'PaiementAccepte from client-service': 3,
      'PaiementRefuse from client-service': 1,
      'StockLibere from stock-service': 1,
      'VenteConfirmee from ventes-service': 3,
    });
    expect(metrics.sum('commandes_expirees_total')).toBe(0);
    expect(metrics.sum('dead_letters_total')).toBe(0);
    expect(metrics.sum('dead_letter_stream_length')).toBe(0);
  }, 180_000);
});
