import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnEachBus } from './support/buses.js';
import {
  dashboardQueries,
  metricNamesIn,
  type PanelQuery,
  substituteGrafanaVariables,
} from './support/dashboard-queries.js';
import { eventually } from './support/eventually.js';
import { PrometheusServer } from './support/prometheus-server.js';
import { declaredMetricNames } from './support/prometheus-text.js';
import { describeNeeding } from './support/servers.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const DASHBOARD_FILES = ['activite-generale.json', 'saga.json'];
const DATASOURCE_UID = 'prometheus';
const WAIT = { timeoutMs: 90_000, intervalMs: 250 };

interface Catalogue {
  magasin: number;
  produit: number;
  rare: number;
  riche: number;
  pauvre: number;
}

/** One sale, one order short of stock, one short of balance, and a few requests the API refuses. */
async function orderWave(shop: Shop, catalogue: Catalogue): Promise<void> {
  const { magasin, produit, rare, riche, pauvre } = catalogue;
  const commandes = [
    await shop.order(riche, magasin, [[produit, 1]]),
    await shop.order(riche, magasin, [[rare, 5]]),
    await shop.order(pauvre, magasin, [[produit, 1]]),
  ];
  await Promise.all(commandes.map((id) => shop.finalCommande(id, WAIT.timeoutMs)));
  expect((await shop.api.get('/api/commandes/cmd-00000000-0000-4000-8000-000000000000')).status).toBe(404);
  expect((await shop.api.post('/api/produits', { nom: 'gratuit', prix: -1 })).status).toBe(400);
}

/**
 * Metrics only the Redis Streams bus has (the streams' own length and growth): the panels that show them
 * stay empty on the PostgreSQL bus, whose events are not copied anywhere (its groups' lag and pending
 * events, and its dead letters, have the same metrics as on Redis).
 */
const REDIS_ONLY_METRIC = /^redis_stream_/;

function isRedisOnly(query: PanelQuery): boolean {
  return metricNamesIn(query.expr).some((name) => REDIS_ONLY_METRIC.test(name));
}

function describeQuery(query: PanelQuery): string {
  return `${query.dashboard} › "${query.panel}" [${query.refId}]: ${query.expr}`;
}

// Without Prometheus the file is skipped with one line saying so; CI (CHOREO_TEST_REQUIRE_ALL=1) fails
// instead. It runs on each bus (on the Redis Streams one where a Redis answers).
describeNeeding(['prometheus'], 'the Grafana dashboards, evaluated by a real Prometheus', () => {
  describeOnEachBus('scraping a running choreo', (bus) => {
    const queries = DASHBOARD_FILES.flatMap((file) => dashboardQueries(file));
    // The panels with no data on this bus, by design (named in the test's title).
    const emptyHere = bus === 'redis' ? [] : queries.filter(isRedisOnly);
    const expectData = queries.filter((query) => !emptyHere.includes(query));
    let system: TestSystem | undefined;
    let prometheus: PrometheusServer | undefined;

    function scraper(): PrometheusServer {
      if (!prometheus) throw new Error('Prometheus did not start: see the error of beforeAll');
      return prometheus;
    }

    beforeAll(async () => {
      // given Prometheus scraping choreo every second, with the metrics token
      const metricsToken = `test-metrics-${randomBytes(16).toString('hex')}`;
      system = await TestSystem.start('dashboards', {
        bus,
        choreo: { processMetrics: true },
        config: { metricsToken },
      });
      const running = await PrometheusServer.start({
        target: new URL(system.api.baseUrl).host,
        job: 'choreo',
        scrapeIntervalSeconds: 1,
        bearerToken: metricsToken,
      });
      prometheus = running;
      await eventually(
        () => running.valueOf('up{job="choreo"}'),
        (up) => up === 1,
        { ...WAIT, description: 'Prometheus to scrape choreo (up{job="choreo"} == 1)' },
      );

      // when two waves of successful and failed orders are placed, each seen by Prometheus before the
      // next, so that rates and quantiles have increases between scrapes to work on
      const shop = new Shop(system.api);
      const magasin = await shop.magasin();
      const produit = await shop.produit(10);
      const rare = await shop.produit(10);
      await shop.setStock(magasin, produit, 100);
      await shop.setStock(magasin, rare, 1);
      const catalogue = {
        magasin,
        produit,
        rare,
        riche: await shop.client(1_000),
        pauvre: await shop.client(5),
      };
      for (const wave of [1, 2]) {
        await orderWave(shop, catalogue);
        await eventually(
          () =>
            Promise.all([
              running.valueOf('sum(saga_commande_succes_total)'),
              running.valueOf('sum(saga_commande_echec_total)'),
              running.valueOf('sum(commande_etat_total{etat="annulee"})'),
            ]),
          ([succes, echecs, annulees]) => succes === wave && echecs === 2 * wave && annulees === wave,
          { ...WAIT, description: `Prometheus to have scraped the orders of wave ${wave}` },
        );
      }
    }, 300_000);

    afterAll(async () => {
      await prometheus?.stop();
      await system?.stop();
    });

    it('finds the PromQL of every panel of both dashboards, all on the provisioned datasource', () => {
      const provisioning = readFileSync(
        new URL('../observability/grafana/provisioning/datasources/prometheus.yml', import.meta.url),
        'utf8',
      );
      expect(provisioning).toMatch(new RegExp(`^\\s*uid: ${DATASOURCE_UID}$`, 'm'));
      for (const file of DASHBOARD_FILES) {
        expect(queries.filter((query) => query.dashboard === file).length, file).toBeGreaterThan(10);
      }
      const elsewhere = queries.filter((query) => query.datasourceUid !== DATASOURCE_UID).map(describeQuery);
      expect(elsewhere).toEqual([]);
    });

    const redisOnlyPanels = [...new Set(emptyHere.map((query) => `"${query.panel}"`))].join(', ');
    it(`answers every panel query with data${emptyHere.length > 0 ? `, except the Redis-only panels ${redisOnlyPanels}` : ''}`, async () => {
      const failures: string[] = [];
      for (const query of expectData) {
        const result = await scraper().query(substituteGrafanaVariables(query.expr));
        if (!result.ok) failures.push(`${describeQuery(query)}\n    → ${result.error}`);
        else if (result.samples.length === 0) failures.push(`${describeQuery(query)}\n    → no data`);
        else if (!result.samples.some((sample) => Number.isFinite(sample.value))) {
          failures.push(`${describeQuery(query)}\n    → only NaN or infinite values`);
        }
      }
      expect(failures, `panels without data:\n${failures.join('\n')}`).toEqual([]);
      // and the Redis-only ones name nothing else than Redis's metrics
      for (const query of emptyHere) {
        const result = await scraper().query(substituteGrafanaVariables(query.expr));
        expect({ query: describeQuery(query), samples: result.ok ? result.samples : result.error }).toEqual({
          query: describeQuery(query),
          samples: [],
        });
      }
    });

    it('names only metrics that choreo declares, even behind `or vector(0)`', async () => {
      const scraped = await scraper().metricNames();
      const metrics = await system?.api.get('/metrics');
      const declared = declaredMetricNames(metrics?.text ?? '');
      const unknown: string[] = [];
      for (const query of queries) {
        const names = metricNamesIn(query.expr);
        if (names.length === 0) unknown.push(`${describeQuery(query)}\n    → names no metric`);
        for (const name of names.filter(
          (candidate) =>
            !scraped.includes(candidate) &&
            !declared.has(candidate) &&
            !(emptyHere.includes(query) && REDIS_ONLY_METRIC.test(candidate)),
        )) {
          unknown.push(`${describeQuery(query)}\n    → ${name} is neither scraped nor declared on /metrics`);
        }
      }
      expect(unknown, `panels naming unknown metrics:\n${unknown.join('\n')}`).toEqual([]);
    });
  });
});
