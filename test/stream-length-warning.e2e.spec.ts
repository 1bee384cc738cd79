import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { METRIC } from '../src/observability/metrics.js';
import { describeOnBus } from './support/buses.js';
import { capturingLogger } from './support/capturing-logger.js';
import { eventually } from './support/eventually.js';
import { scrapeMetrics } from './support/prometheus-text.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

/** What the warning says of each group: entries delivered and not acknowledged, plus not delivered. */
const warningGroups = z.array(z.object({ group: z.string(), behind: z.number().nullable() }));

/** The warning bound, small so that a handful of orders passes it. */
const BOUND = 5;
const ORDERS = 12;
const VENTES_GROUP = 'ventes-service';
const STREAM = 'paiement.evenements';

// Redis only: the PostgreSQL bus keeps no copy of the events (its consumers read the store).
describeOnBus('redis', 'a consumer group far behind loses nothing, and Redis says its bound is near', () => {
  let system: TestSystem;
  let shop: Shop;
  const { logger, lines } = capturingLogger();

  beforeAll(async () => {
    system = await TestSystem.start('length_warning', {
      bus: 'redis',
      // Trimming as eagerly as it can: whatever it may remove is gone within 50 ms.
      config: { streamRetentionMs: 0, streamLengthWarning: BOUND },
      choreo: { streamTrimIntervalMs: 50, streamWarningRepeatMs: 60_000, logger },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  const warnings = () =>
    lines.filter((line) => String(line.msg).includes('longer than STREAM_LENGTH_WARNING'));

  it('keeps every entry a paused group has not read past the bound, warns once, and every order completes', async () => {
    // given the sales service paused, and more paid orders waiting for it than the warning bound
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 100);
    const commandes: string[] = [];
    for (let index = 0; index < ORDERS; index += 1) {
      commandes.push(await shop.order(await shop.client(10), magasin, [[produit, 1]]));
    }

    // then the stream the sales group reads holds every one of them (nothing trimmed it below)
    const key = system.streamKey(STREAM);
    await eventually(
      () => system.redis.xlen(key),
      (length) => length >= ORDERS,
      { description: `${STREAM} holding the ${ORDERS} payments the paused group has not read` },
    );

    // and the relay's process said so once, naming the stream, its length and how far behind the group is
    await eventually(
      async () => warnings(),
      (found) => found.length > 0,
      { description: 'the warning log line' },
    );
    const warning = warnings().find((line) => line.stream === STREAM);
    expect(warning).toMatchObject({ level: 40, stream: STREAM, bound: BOUND });
    expect(Number(warning?.length)).toBeGreaterThan(BOUND);
    // It is said when the length first passes the bound, when a few entries the sales group had read
    // before its pause may still be there: the paused group is the one furthest behind, not by how much.
    const groups = warningGroups.parse(warning?.groups);
    const furthestBehind = groups.reduce((furthest, group) =>
      (group.behind ?? 0) > (furthest.behind ?? 0) ? group : furthest,
    );
    expect(furthestBehind.group).toBe(VENTES_GROUP);
    expect(furthestBehind.behind).toBeGreaterThan(0);
    expect(furthestBehind.behind).toBeLessThanOrEqual(Number(warning?.length));

    // and the metrics let a dashboard compare the length with the bound
    const snapshot = await eventually(
      () => scrapeMetrics(system.api),
      (metrics) => metrics.sum(METRIC.streamNearBound, { stream: STREAM }) === 1,
      { description: `${METRIC.streamNearBound}{stream="${STREAM}"} at 1` },
    );
    expect(snapshot.sum(METRIC.streamLengthWarning)).toBe(BOUND);
    expect(snapshot.sum(METRIC.streamLength, { stream: STREAM })).toBeGreaterThan(BOUND);

    // when the sales service comes back, every order completes: no entry was lost while it was away
    const trimPassesSeen = lines.length;
    system.choreo.resumeActor('ventes');
    for (const commandeId of commandes) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }

    // and once caught up the stream is trimmed back under the bound, which the metric and the log say
    await eventually(
      () => scrapeMetrics(system.api),
      (metrics) => metrics.sum(METRIC.streamNearBound, { stream: STREAM }) === 0,
      { description: `${METRIC.streamNearBound}{stream="${STREAM}"} back at 0` },
    );
    expect(await system.redis.xlen(key)).toBeLessThanOrEqual(BOUND);
    expect(
      lines
        .slice(trimPassesSeen)
        .some((line) => line.stream === STREAM && String(line.msg).includes('back under')),
    ).toBe(true);
    // warned once per stream while above: passes every 50 ms did not repeat it (the reminder is a minute)
    expect(warnings().filter((line) => line.stream === STREAM)).toHaveLength(1);
    expect(await system.redis.xpending(key, VENTES_GROUP)).toEqual([0, null, null, null]);
  });

  it('counts a pending entry found trimmed away, by group and stream', async () => {
    // given an entry delivered to the sales group's consumer that then vanished, and deleted from the
    // stream while still pending (what a cap on the stream's length would do)
    const key = system.streamKey(STREAM);
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const id = String(await system.redis.xadd(key, '*', 'junk', '1'));
    await system.redis.xreadgroup('GROUP', VENTES_GROUP, 'gone', 'COUNT', '10', 'STREAMS', key, '>');
    await system.redis.xdel(key, id);

    // when the sales group's consumer comes back, its sweep finds it gone
    system.choreo.resumeActor('ventes');

    // then it is counted (and logged), and no longer pending
    await eventually(
      () => scrapeMetrics(system.api),
      (metrics) => metrics.sum(METRIC.streamPendingTrimmed, { group: VENTES_GROUP, stream: STREAM }) === 1,
      { description: `${METRIC.streamPendingTrimmed}{group="${VENTES_GROUP}",stream="${STREAM}"} at 1` },
    );
    expect(lines.some((line) => line.entry === id && String(line.msg).includes('trimmed away'))).toBe(true);
    expect(await system.redis.xpending(key, VENTES_GROUP)).toEqual([0, null, null, null]);
  });
});
