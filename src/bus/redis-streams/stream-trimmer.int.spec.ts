import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { capturingLogger } from '../../../test/support/capturing-logger.js';
import { describeNeeding } from '../../../test/support/servers.js';
import type { StreamName } from '../../domain/events.js';
import { createLogger } from '../../observability/logger.js';
import { createRedis, type Redis } from './redis.js';
import { StreamKeys } from './stream-keys.js';
import { StreamTrimmer } from './stream-trimmer.js';

const STREAM: StreamName = 'stock.evenements';
const readReplySchema = z
  .array(z.tuple([z.string(), z.array(z.tuple([z.string(), z.unknown()]))]))
  .nullable();
const rangeReplySchema = z.array(z.tuple([z.string(), z.unknown()]));

// Redis only: without a Redis, skipped with one line saying so (a failure with CHOREO_TEST_REQUIRE_ALL=1).
describeNeeding(['redis'], 'the stream trimmer (real Redis)', () => {
  let redis: Redis;
  let keys: StreamKeys;
  let key: string;

  beforeAll(() => {
    redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  beforeEach(() => {
    keys = new StreamKeys(`trim-${randomUUID().slice(0, 8)}:`);
    key = keys.stream(STREAM);
  });
  afterAll(async () => {
    if (!redis) return;
    const leftovers = await redis.keys('trim-*');
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
  });

  /** A trimmer of the stream, which `groups` read. */
  function trimmer(retentionMs: number, groups: string[] = []): StreamTrimmer {
    return new StreamTrimmer({
      redis,
      keys,
      consumers: new Map([[STREAM, groups]]),
      retentionMs,
      logger: createLogger('silent'),
    });
  }

  /** Adds entries with the given millisecond ids; returns their ids. */
  async function addEntries(milliseconds: number[]): Promise<string[]> {
    const ids: string[] = [];
    for (const ms of milliseconds) ids.push(String(await redis.xadd(key, `${ms}-0`, 'n', String(ms))));
    return ids;
  }

  async function createGroup(group: string): Promise<void> {
    await redis.call('XGROUP', 'CREATE', key, group, '0');
  }

  /** Reads `count` new entries as the group's consumer, and acknowledges the first `ack` of them. */
  async function consume(group: string, count: number, ack: number): Promise<string[]> {
    const reply = readReplySchema.parse(
      await redis.call('XREADGROUP', 'GROUP', group, 'c1', 'COUNT', String(count), 'STREAMS', key, '>'),
    );
    const ids = (reply?.[0]?.[1] ?? []).map(([id]) => id);
    if (ack > 0) await redis.xack(key, group, ...ids.slice(0, ack));
    return ids;
  }

  async function remainingIds(): Promise<string[]> {
    return rangeReplySchema.parse(await redis.xrange(key, '-', '+')).map(([id]) => id);
  }

  it('removes what every group acknowledged, and keeps what a group still holds pending', async () => {
    // given ten old entries, all acknowledged by one group, six of them by the other (four still pending)
    const ids = await addEntries([1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]);
    await createGroup('stock-service');
    await createGroup('commande-saga');
    await consume('stock-service', 10, 10);
    await consume('commande-saga', 10, 6);

    // when the trimmer passes
    const removed = await trimmer(0, ['stock-service', 'commande-saga']).trimAll();

    // then the six acknowledged everywhere are gone, and the four pending are still there to be redelivered
    expect(removed.get(STREAM)).toBe(6);
    expect(await remainingIds()).toEqual(ids.slice(6));
  });

  it('keeps the entries not yet delivered to a group', async () => {
    // given a group that took only the first three entries and acknowledged them
    const ids = await addEntries([1001, 1002, 1003, 1004, 1005, 1006]);
    await createGroup('stock-service');
    await createGroup('ventes-service');
    await consume('stock-service', 6, 6);
    await consume('ventes-service', 3, 3);

    await trimmer(0, ['stock-service', 'ventes-service']).trimAll();

    // then what that group has not read yet stays (with the last entry it got, which is harmless)
    expect(await remainingIds()).toEqual(ids.slice(2));
  });

  it('keeps acknowledged entries younger than the retention, for groups created later', async () => {
    const now = Date.now();
    const ids = await addEntries([now - 50_000, now - 40_000, now - 30_000, now - 5_000, now - 1_000]);
    await createGroup('stock-service');
    await consume('stock-service', 5, 5);

    await trimmer(20_000, ['stock-service']).trimAll(now);

    expect(await remainingIds()).toEqual(ids.slice(3));
  });

  it('leaves a stream alone until every group that reads it exists', async () => {
    // given entries one group acknowledged, on a stream another group (not created yet) reads too
    const ids = await addEntries([1001, 1002, 1003]);
    await createGroup('stock-service');
    await consume('stock-service', 3, 3);
    const trimmerOfBoth = trimmer(0, ['stock-service', 'commande-saga']);

    // then nothing goes while the other group is missing (Redis lost it, or its service never started)
    expect((await trimmerOfBoth.trimAll()).get(STREAM)).toBe(0);
    expect(await remainingIds()).toEqual(ids);

    // and once it exists and has caught up, the stream is trimmed
    await createGroup('commande-saga');
    await consume('commande-saga', 3, 3);
    expect((await trimmerOfBoth.trimAll()).get(STREAM)).toBe(2);
  });

  it('warns when a stream passes the warning bound, naming how far behind each group is, and not at every pass', async () => {
    // given a stream of six entries, all read by one group, two by the other (which is behind)
    await addEntries([1001, 1002, 1003, 1004, 1005, 1006]);
    await createGroup('stock-service');
    await createGroup('ventes-service');
    await consume('stock-service', 6, 6);
    await consume('ventes-service', 2, 1);
    const { logger, lines } = capturingLogger();
    const lengths: [StreamName, number, boolean][] = [];
    const watching = new StreamTrimmer({
      redis,
      keys,
      consumers: new Map([[STREAM, ['stock-service', 'ventes-service']]]),
      retentionMs: 0,
      logger,
      lengthWarning: 3,
      warningRepeatMs: 60_000,
      onLength: (stream, length, above) => lengths.push([stream, length, above]),
    });

    // when the trimmer passes twice: it keeps the five entries the group behind still needs
    await watching.trimAll();
    await watching.trimAll();

    // then the stream is reported above the bound at each pass, and logged once, with each group's delay
    expect(lengths).toEqual([
      [STREAM, 5, true],
      [STREAM, 5, true],
    ]);
    const warnings = lines.filter((line) => String(line.msg).includes('longer than STREAM_LENGTH_WARNING'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 40,
      stream: STREAM,
      length: 5,
      bound: 3,
      groups: expect.arrayContaining([
        { group: 'stock-service', pending: 0, notDelivered: 0, behind: 0 },
        { group: 'ventes-service', pending: 1, notDelivered: 4, behind: 5 },
      ]) as unknown,
    });

    // and once the group caught up, the stream is trimmed under the bound, which is said once
    await consume('ventes-service', 4, 4);
    await redis.xack(key, 'ventes-service', ...(await remainingIds()));
    await watching.trimAll();
    expect(lengths.at(-1)).toEqual([STREAM, 1, false]);
    expect(lines.filter((line) => String(line.msg).includes('back under'))).toHaveLength(1);
  });

  it('reminds of a stream that stays above the bound once the repeat interval has passed', async () => {
    await addEntries([1001, 1002, 1003]);
    await createGroup('stock-service');
    const { logger, lines } = capturingLogger();
    const watching = new StreamTrimmer({
      redis,
      keys,
      consumers: new Map([[STREAM, ['stock-service']]]),
      retentionMs: 0,
      logger,
      lengthWarning: 2,
      warningRepeatMs: 0,
    });

    await watching.trimAll();
    await watching.trimAll();

    expect(
      lines.filter((line) => String(line.msg).includes('longer than STREAM_LENGTH_WARNING')),
    ).toHaveLength(2);
  });

  it('leaves a stream without consumer groups alone, and a missing stream is no error', async () => {
    const ids = await addEntries([1001, 1002, 1003]);

    const removed = await trimmer(0).trimAll();
    expect(removed.get(STREAM)).toBe(0);
    expect(await remainingIds()).toEqual(ids);

    await redis.del(key);
    expect((await trimmer(0).trimAll()).get(STREAM)).toBe(0);
  });
});
