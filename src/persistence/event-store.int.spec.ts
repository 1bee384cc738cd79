import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { VersionConflictError } from '../domain/errors.js';
import type { NewEvent } from '../domain/events.js';
import { createPool, type Pool, withTransaction } from './database.js';
import { appendToStream, appendToStreams, readStream } from './event-store.js';
import { migrate } from './migrate.js';

const libere: NewEvent = {
  event_type: 'StockLibere',
  source: 'stock-service',
  causation_id: null,
  data: { magasin_id: 1, produits: [], raison: 'test' },
};

describe('the event store', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('event_store');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it('appends with gapless versions and a global position', async () => {
    const stored = await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-a', 0, [libere, libere]));
    const more = await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-a', 2, [libere]));

    expect([...stored, ...more].map((event) => event.version)).toEqual([1, 2, 3]);
    const positions = (await readStream(pool, 'cmd-a')).map((event) => event.position);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set([...stored, ...more].map((event) => event.event_id)).size).toBe(3);
    const correlated = await appendToStream(pool, 'cmd-a', 3, [libere], 'cmd-origin');
    expect((await readStream(pool, 'cmd-a')).map((event) => event.correlation_id)).toEqual([
      'cmd-a',
      'cmd-a',
      'cmd-a',
      'cmd-origin',
    ]);
    expect(correlated[0]?.correlation_id).toBe('cmd-origin');
    const uncorrelated = await appendToStreams(pool, [
      { aggregateId: 'cmd-a', expectedVersion: 4, events: [libere] },
    ]);
    expect(uncorrelated.map((event) => [event.version, event.correlation_id])).toEqual([[5, 'cmd-a']]);
    expect((await readStream(pool, 'cmd-a')).at(-1)?.correlation_id).toBe('cmd-a');
  });

  it('refuses an append at a stale or future version with a VersionConflictError', async () => {
    await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-b', 0, [libere]));

    await expect(
      withTransaction(pool, (tx) => appendToStream(tx, 'cmd-b', 0, [libere])),
    ).rejects.toBeInstanceOf(VersionConflictError);
    await expect(
      withTransaction(pool, (tx) => appendToStream(tx, 'cmd-b', 5, [libere])),
    ).rejects.toBeInstanceOf(VersionConflictError);
    expect(await readStream(pool, 'cmd-b')).toHaveLength(1);
  });

  it('appends to several streams in one statement, all or nothing', async () => {
    const stored = await appendToStreams(pool, [
      { aggregateId: 'cmd-multi-1', expectedVersion: 0, events: [libere, libere] },
      { aggregateId: 'cmd-multi-2', expectedVersion: 0, events: [libere], correlationId: 'cmd-multi-1' },
    ]);
    expect(stored.map((event) => [event.aggregate_id, event.version, event.correlation_id])).toEqual([
      ['cmd-multi-1', 1, 'cmd-multi-1'],
      ['cmd-multi-1', 2, 'cmd-multi-1'],
      ['cmd-multi-2', 1, 'cmd-multi-1'],
    ]);

    // one stale stream fails the whole append: the other stream gets nothing either
    await expect(
      appendToStreams(pool, [
        { aggregateId: 'cmd-multi-1', expectedVersion: 2, events: [libere] },
        { aggregateId: 'cmd-multi-2', expectedVersion: 0, events: [libere] },
      ]),
    ).rejects.toBeInstanceOf(VersionConflictError);
    // and so does one at a version it has not reached: versions stay gapless
    await expect(
      appendToStreams(pool, [
        { aggregateId: 'cmd-multi-1', expectedVersion: 2, events: [libere] },
        { aggregateId: 'cmd-multi-2', expectedVersion: 7, events: [libere] },
      ]),
    ).rejects.toBeInstanceOf(VersionConflictError);
    expect(await readStream(pool, 'cmd-multi-1')).toHaveLength(2);
    expect(await readStream(pool, 'cmd-multi-2')).toHaveLength(1);
  });

  it('lets exactly one of two concurrent writers at the same version win', async () => {
    const attempts = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        withTransaction(pool, (tx) => appendToStream(tx, 'cmd-c', 0, [libere])),
      ),
    );

    expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
    for (const attempt of attempts) {
      if (attempt.status === 'rejected') expect(attempt.reason).toBeInstanceOf(VersionConflictError);
    }
  });

  it('is append-only: rows can be neither updated nor deleted', async () => {
    await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-d', 0, [libere]));

    await expect(
      pool.query("UPDATE events SET source = 'forged' WHERE aggregate_id = 'cmd-d'"),
    ).rejects.toThrow(/append-only/);
    await expect(pool.query("DELETE FROM events WHERE aggregate_id = 'cmd-d'")).rejects.toThrow(
      /append-only/,
    );
    await expect(pool.query('TRUNCATE events')).rejects.toThrow(/append-only/);
  });

  it('applies migrations idempotently', async () => {
    expect(await migrate(pool)).toEqual([]);
  });
});
