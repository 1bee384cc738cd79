import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { HistoryRetention } from '../src/actors/history-retention.js';
import type { Choreo } from '../src/app.js';
import { ACTOR_NAMES } from '../src/config.js';
import { isSagaEventType } from '../src/domain/events.js';
import { createLogger } from '../src/observability/logger.js';
import { describeOnBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';
import { scrapeMetrics } from './support/prometheus-text.js';
import { RedisServer } from './support/redis-server.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';
import { WorkerProcess } from './support/worker-process.js';

const DONE_ORDERS = 30;
const IN_FLIGHT_ORDERS = 3;
const GROUPS = ['stock-service', 'client-service', 'ventes-service', 'commande-saga'];
const STREAMS = ['commande.evenements', 'stock.evenements', 'paiement.evenements', 'vente.evenements'];

const positionRows = z.array(z.object({ consumer_group: z.string(), position: z.coerce.number().int() }));
const prunedRow = z.object({ position: z.coerce.number().int() });
const countRow = z.object({ count: z.coerce.number().int() });
const groupInfo = z.object({ name: z.string(), pending: z.number(), 'last-delivered-id': z.string() });
const eventRows = z.array(z.object({ position: z.coerce.number().int(), event_type: z.string() }));

async function rowsOf(system: TestSystem, sql: string, values: unknown[] = []): Promise<unknown[]> {
  return (await system.choreo.pool.query(sql, values)).rows;
}

/** Each consumer group's recorded position (consumer_group_positions). */
async function groupPositionsOf(system: TestSystem): Promise<Map<string, number>> {
  return new Map(
    positionRows
      .parse(await rowsOf(system, 'SELECT consumer_group, position FROM consumer_group_positions'))
      .map(({ consumer_group, position }) => [consumer_group, position]),
  );
}

// Redis only, on a Redis of its own: FLUSHALL must not touch the Redis other test files share.
describeOnBus('redis', 'Recovery after Redis loses its data costs what was lost', () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    redisServer = new RedisServer(await freePort());
    await redisServer.start();
    redis = new Redis(redisServer.url, { protocol: 2 });
    system = await TestSystem.start('redis_recovery', {
      bus: 'redis',
      config: { redisUrl: redisServer.url },
      choreo: { groupPositionIntervalMs: 100, historyRetentionIntervalMs: 200 },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    redis?.disconnect();
    await system?.stop();
    await redisServer?.kill();
  });

  const query = (sql: string, values: unknown[] = []) => rowsOf(system, sql, values);
  const groupPositions = () => groupPositionsOf(system);
  const inboxPrunedThrough = async (): Promise<number> =>
    prunedRow.parse((await query('SELECT position FROM inbox_pruned'))[0]).position;
  const inboxRowsAtOrBelow = async (position: number): Promise<number> =>
    countRow.parse(
      (
        await query(
          'SELECT count(*) FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id WHERE e.position <= $1',
          [position],
        )
      )[0],
    ).count;
  const handledByGroup = async (): Promise<Map<string, number>> => {
    const handled = new Map<string, number>();
    for (const { labels, value } of (await system.choreo.metrics.consumerHandled.get()).values) {
      const group = String(labels.consumer);
      handled.set(group, (handled.get(group) ?? 0) + value);
    }
    return handled;
  };
  const groupStates = async () => {
    const states: { group: string; pending: number; lastDelivered: string; lastEntry: string }[] = [];
    for (const stream of STREAMS) {
      const key = system.streamKey(stream);
      const info = z.array(z.unknown()).parse(await redis.call('XINFO', 'STREAM', key));
      const lastEntry = z.string().parse(info[info.indexOf('last-generated-id') + 1]);
      for (const fields of z.array(z.array(z.unknown())).parse(await redis.call('XINFO', 'GROUPS', key))) {
        const group = groupInfo.parse(Object.fromEntries(pairsOf(fields)));
        states.push({
          group: group.name,
          pending: group.pending,
          lastDelivered: group['last-delivered-id'],
          lastEntry,
        });
      }
    }
    return states;
  };
  const streamLengths = async (): Promise<number> => {
    let total = 0;
    for (const stream of STREAMS) total += z.number().parse(await redis.xlen(system.streamKey(stream)));
    return total;
  };

  it('republishes only after the oldest group position, places each group past what it handled, and prunes the inbox below it', async () => {
    // given many orders done, and a few paid and waiting for the sales service (paused)
    const magasin = await shop.magasin();
    const produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 100);
    const client = await shop.client(1_000);
    const done: string[] = [];
    for (let i = 0; i < DONE_ORDERS; i++) done.push(await shop.order(client, magasin, [[produit, 1]]));
    for (const commandeId of done) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const inFlight: string[] = [];
    for (let i = 0; i < IN_FLIGHT_ORDERS; i++)
      inFlight.push(await shop.order(client, magasin, [[produit, 1]]));
    for (const commandeId of inFlight) {
      await eventually(
        () => shop.commande(commandeId),
        (commande) => commande.statut === 'paiement_accepte',
      );
    }

    // and every group's position recorded: the sales service's stops below the first payment it waits for
    const events = eventRows.parse(await query('SELECT position, event_type FROM events ORDER BY position'));
    const head = events.at(-1)?.position ?? 0;
    const firstWaiting = z.number().parse(
      eventRows
        .parse(
          await query(
            `SELECT position, event_type FROM events
               WHERE aggregate_id = ANY($1::text[]) AND event_type = 'PaiementAccepte' ORDER BY position`,
            [inFlight],
          ),
        )
        .at(0)?.position,
    );
    const positions = await eventually(
      groupPositions,
      (recorded) =>
        GROUPS.every((group) => recorded.has(group)) &&
        recorded.get('ventes-service') === firstWaiting - 1 &&
        GROUPS.filter((group) => group !== 'ventes-service').every((group) => recorded.get(group) === head),
      { description: 'every group to record its position' },
    );
    const oldest = Math.min(...positions.values());
    expect(oldest).toBe(firstWaiting - 1);

    // and the inbox pruned up to the oldest position, not beyond
    await eventually(inboxPrunedThrough, (position) => position === oldest, {
      description: 'the inbox to be pruned up to the oldest group position',
    });
    expect(await inboxRowsAtOrBelow(oldest)).toBe(0);
    expect(await inboxRowsAtOrBelow(head)).toBeGreaterThan(0);
    const soldeBefore = await shop.solde(client);
    const handledBefore = await handledByGroup();

    // when Redis loses its data
    await redis.flushall();

    // then the relay publishes again only the events after the oldest position, once
    const expectedAgain = events.filter(
      ({ position, event_type }) => position > oldest && isSagaEventType(event_type),
    ).length;
    await eventually(
      async () => ({
        marker: await redis.exists(`${system.streamPrefix}choreo.relay-marker`),
        relay: prunedRow.parse(
          (await query("SELECT position FROM checkpoints WHERE name = 'outbox-relay'"))[0],
        ).position,
      }),
      ({ marker, relay }) => marker === 1 && relay === head,
      { description: 'the relay to publish the store again up to its head' },
    );
    expect(await streamLengths()).toBe(expectedAgain);
    expect(expectedAgain).toBeLessThan(events.length / 4);

    // and every group exists again, each past what it had handled: the groups that were not behind are
    // delivered nothing again, and the sales service exactly the payments it waits for
    // (each group but the paused one given every entry of its streams and holding none)
    await eventually(
      groupStates,
      (states) =>
        states.length === 10 &&
        states.every(
          ({ group, pending, lastDelivered, lastEntry }) =>
            group === 'ventes-service' || (pending === 0 && lastDelivered === lastEntry),
        ),
      { description: 'the ten (stream, group) pairs to exist again, all but the sales service caught up' },
    );
    expect(await handledByGroup()).toEqual(handledBefore);

    // and once the sales service is back, the orders in flight complete, each effect applied once
    system.choreo.resumeActor('ventes');
    for (const commandeId of [...done, ...inFlight]) {
      expect((await shop.finalCommande(commandeId, 30_000)).statut).toBe('vente_confirmee');
    }
    expect(soldeBefore).toBe(1_000 - 2 * (DONE_ORDERS + IN_FLIGHT_ORDERS));
    expect(await shop.solde(client)).toBe(soldeBefore);
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 67, reservee: 0 })).toEqual({
      quantite: 67,
      reservee: 0,
    });
    const ventes = countRow.parse((await query('SELECT count(*) FROM ventes'))[0]).count;
    expect(ventes).toBe(DONE_ORDERS + IN_FLIGHT_ORDERS);
    const handledAfter = await handledByGroup();
    // only what was lost was delivered again: the 3 payments, then the 3 sales that completed them
    expect(handledAfter.get('ventes-service')).toBe(
      (handledBefore.get('ventes-service') ?? 0) + IN_FLIGHT_ORDERS,
    );
    expect(handledAfter.get('stock-service')).toBe(
      (handledBefore.get('stock-service') ?? 0) + IN_FLIGHT_ORDERS,
    );
  });
});

// A relay that dies in the middle of a recovery (after its first batch reached Redis, before its
// checkpoint moved) is followed by one that finds the marker and publishes that batch again, placing no
// group: a group that had handled those events is delivered them again, from a copy after the one it was
// placed past. Its position, recorded before the loss and only ever raised, says it handled them; its
// inbox rows must stay until it has skipped them anyway.
describeOnBus('redis', 'Recovery after Redis loses its data, with a relay that dies mid-recovery', () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let system: TestSystem;
  let shop: Shop;
  let relay: Choreo;
  let worker: WorkerProcess | null = null;

  const RELAY_OPTIONS = { groupPositionIntervalMs: 100, historyRetentionIntervalMs: 200 };

  beforeAll(async () => {
    redisServer = new RedisServer(await freePort());
    await redisServer.start();
    redis = new Redis(redisServer.url, { protocol: 2 });
    system = await TestSystem.start('redis_recovery_relay_dies', {
      bus: 'redis',
      actors: ACTOR_NAMES.filter((actor) => actor !== 'relay'),
      config: { redisUrl: redisServer.url },
    });
    relay = await system.addNode(['relay'], RELAY_OPTIONS);
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await worker?.kill();
    redis?.disconnect();
    await system?.stop();
    await redisServer?.kill();
  });

  const query = (sql: string, values: unknown[] = []) => rowsOf(system, sql, values);
  const groupPositions = () => groupPositionsOf(system);
  const relayCheckpoint = async (): Promise<number> =>
    prunedRow.parse((await query("SELECT position FROM checkpoints WHERE name = 'outbox-relay'"))[0])
      .position;
  /** The stock service's inbox rows of events after `position`. */
  const stockInboxRowsAfter = async (position: number): Promise<number> =>
    countRow.parse(
      (
        await query(
          `SELECT count(*) FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id
           WHERE i.consumer = 'stock-service' AND e.position > $1`,
          [position],
        )
      )[0],
    ).count;
  const stockRefusals = async (): Promise<number> =>
    (await scrapeMetrics(system.api)).byLabel('commande_evenements_refuses_total', 'consumer')[
      'stock-service'
    ] ?? 0;

  it('keeps the inbox rows of a group delivered again what it handled, until it has skipped them', async () => {
    // given orders done, then three paid and waiting for the sales service (paused), one after the other
    const magasin = await shop.magasin();
    const produit = await shop.produit(2);
    await shop.setStock(magasin, produit, 20);
    const client = await shop.client(1_000);
    for (let i = 0; i < 5; i++) {
      const commandeId = await shop.order(client, magasin, [[produit, 1]]);
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const inFlight: string[] = [];
    for (let i = 0; i < 3; i++) {
      const commandeId = await shop.order(client, magasin, [[produit, 1]]);
      await eventually(
        () => shop.commande(commandeId),
        (commande) => commande.statut === 'paiement_accepte',
      );
      inFlight.push(commandeId);
    }
    const head = z
      .number()
      .parse(
        eventRows.parse(await query('SELECT position, event_type FROM events ORDER BY position')).at(-1)
          ?.position,
      );
    const positions = await eventually(
      groupPositions,
      (recorded) =>
        GROUPS.every((group) => recorded.has(group)) &&
        GROUPS.filter((group) => group !== 'ventes-service').every((group) => recorded.get(group) === head) &&
        (recorded.get('ventes-service') ?? head) < head,
      { description: 'every group to record its position, the sales service below the others' },
    );
    const from = Math.min(...positions.values());
    // the stock service handled the in-flight orders' events after `from`: it holds their inbox rows
    const stockRowsHandled = await stockInboxRowsAfter(from);
    expect(stockRowsHandled).toBeGreaterThan(0);
    const refusalsBefore = await stockRefusals();

    // when the stock service is down, Redis loses its data, and the relay dies right after its first batch
    expect(await system.choreo.pauseActor('stock')).toBe(true);
    await system.stopNode(relay);
    await redis.flushall();
    worker = new WorkerProcess({
      BUS: 'redis',
      DATABASE_URL: system.database.url,
      REDIS_URL: redisServer.url,
      STREAM_PREFIX: system.streamPrefix,
      ACTORS: 'relay',
      CHOREO_FAULT: 'relay.after-publish:1',
    });
    const exit = await worker.exited;
    expect(exit.signal, worker.output).toBe('SIGKILL');
    expect(await redis.exists(`${system.streamPrefix}choreo.relay-marker`)).toBe(1);
    expect(await relayCheckpoint()).toBe(from);

    // and a relay starts again: it finds the marker and publishes that batch again, placing no group
    relay = await system.addNode(['relay'], RELAY_OPTIONS);
    system.choreo.resumeActor('ventes');
    for (const commandeId of inFlight) {
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    const newHead = z
      .number()
      .parse(
        eventRows.parse(await query('SELECT position, event_type FROM events ORDER BY position')).at(-1)
          ?.position,
      );
    await eventually(
      groupPositions,
      (recorded) =>
        GROUPS.filter((group) => group !== 'stock-service').every((group) => recorded.get(group) === newHead),
      { description: 'every group but the stock service to record the new head' },
    );

    // then a pruning pass keeps the stock service's rows of what it is to be delivered again
    const retention = new HistoryRetention({
      pool: system.choreo.pool,
      bus: relay.bus,
      consumers: GROUPS,
      idempotencyKeyRetentionMs: 86_400_000,
      logger: createLogger('silent'),
    });
    const pruned = await retention.pruneOnce();
    expect(pruned.inboxPrunedThrough).toBeLessThanOrEqual(from);
    expect(await stockInboxRowsAfter(from)).toBe(stockRowsHandled);

    // and once the stock service is back, it skips them: nothing is applied twice
    system.choreo.resumeActor('stock');
    expect(await shop.stockSettlesAt(magasin, produit, { quantite: 12, reservee: 0 })).toEqual({
      quantite: 12,
      reservee: 0,
    });
    await eventually(groupPositions, (recorded) => recorded.get('stock-service') === newHead, {
      description: 'the stock service to record the new head',
    });
    expect(await stockRefusals()).toBe(refusalsBefore);
  });
});

function pairsOf(fields: readonly unknown[]): [string, unknown][] {
  const pairs: [string, unknown][] = [];
  for (let index = 0; index + 1 < fields.length; index += 2)
    pairs.push([String(fields[index]), fields[index + 1]]);
  return pairs;
}
