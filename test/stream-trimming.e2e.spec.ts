import { afterAll, beforeAll, expect, it } from 'vitest';
import { METRIC } from '../src/observability/metrics.js';
import { describeOnBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { scrapeMetrics } from './support/prometheus-text.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

// Redis only: the PostgreSQL bus keeps no copy of the events to trim (its consumers read the store).
describeOnBus('redis', 'the streams are kept to what a consumer group still needs', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('trimming', {
      bus: 'redis',
      config: { streamRetentionMs: 0 },
      choreo: { streamTrimIntervalMs: 50 },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('removes the entries every group has acknowledged once their orders are done, and counts them', async () => {
    // given three orders that ran to the end
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 10);
    const commandes: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      commandes.push(await shop.order(await shop.client(10), magasin, [[produit, 1]]));
    }
    for (const commandeId of commandes) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }

    // then each stream keeps only the last entry its groups were given, and the metric counts the rest
    const stream = system.streamKey('commande.evenements');
    await eventually(
      () => system.redis.xlen(stream),
      (length) => length === 1,
      { description: 'commande.evenements trimmed to its last entry' },
    );
    await eventually(
      () => scrapeMetrics(system.api),
      (snapshot) =>
        snapshot.sum(METRIC.streamEntriesTrimmed, { stream: 'commande.evenements' }) === 2 &&
        snapshot.sum(METRIC.streamEntriesTrimmed, { stream: 'vente.evenements' }) === 2,
      { description: 'the two trimmed CommandeCreee and the two trimmed VenteConfirmee counted' },
    );
  });
});
