import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { isSagaEventType } from '../src/domain/events.js';
import { describeOnBus } from './support/buses.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';
import { RedisServer } from './support/redis-server.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const DONE_ORDERS = 30;
const IN_FLIGHT_ORDERS = 3;
const GROUPS = ['stock-service', 'client-service', 'ventes-service', 'commande-saga'];
const STREAMS = ['commande.evenements', 'stock.evenements', 'paiement.evenements', 'vente.evenements'];

const positionRows = z.array(z.object({ consumer_group: z.string(), position: z.coerce.number().int() }));
const prunedRow = z.object({ position: z.coerce.number().int() });
const countRow = z.object({ count: z.coerce.number().int() });
const groupInfo = z.object({ name: z.string(), pending: z.number(), 'last-delivered-id': z.string() });
const eventRows = z.array(z.object({ position: z.coerce.number().int(), event_type: z.string() }));

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

  const query = async (sql: string, values: unknown[] = []): Promise<unknown[]> =>
    (await system.choreo.pool.query(sql, values)).rows;
  const groupPositions = async (): Promise<Map<string, number>> =>
    new Map(
      positionRows
        .parse(await query('SELECT consumer_group, position FROM consumer_group_positions'))
        .map(({ consumer_group, position }) => [consumer_group, position]),
    );
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

function pairsOf(fields: readonly unknown[]): [string, unknown][] {
  const pairs: [string, unknown][] = [];
  for (let index = 0; index + 1 < fields.length; index += 2)
    pairs.push([String(fields[index]), fields[index + 1]]);
  return pairs;
}
