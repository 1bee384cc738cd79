import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import type { NewEvent } from '../domain/events.js';
import { createPool, type Pool } from './database.js';
import { appendToStream } from './event-store.js';
import { pruneInbox, readInboxPrunedThrough } from './history-retention.js';
import { migrate } from './migrate.js';

const libere: NewEvent = {
  event_type: 'StockLibere',
  source: 'stock-service',
  causation_id: null,
  data: { magasin_id: 1, produits: [], raison: 'test' },
};

const prunedAtSchema = z.object({ pruned_at: z.date() });
const inboxRowSchema = z.object({ consumer: z.string(), position: z.coerce.number().int() });

describe('pruning the inbox', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeEach(async () => {
    database = await createTestDatabase('history_retention');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterEach(async () => {
    await pool?.end();
    await database?.drop();
  });

  /** Appends `count` events, each handled by every one of `consumers`; returns their positions in order. */
  async function handledEvents(count: number, consumers: readonly string[]): Promise<number[]> {
    const positions: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const [stored] = await appendToStream(pool, `cmd-${randomUUID()}`, 0, [libere]);
      if (!stored) throw new Error('nothing appended');
      positions.push(stored.position);
      for (const consumer of consumers) {
        await pool.query('INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)', [
          consumer,
          stored.event_id,
        ]);
      }
    }
    return positions;
  }

  /** The inbox as `consumer@position`, in position then consumer order. */
  async function inbox(): Promise<string[]> {
    const result = await pool.query(
      `SELECT i.consumer, e.position FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id
       ORDER BY e.position, i.consumer`,
    );
    return result.rows.map((row) => {
      const { consumer, position } = inboxRowSchema.parse(row);
      return `${consumer}@${position}`;
    });
  }

  async function lastPrunedAt(): Promise<Date> {
    return prunedAtSchema.parse((await pool.query('SELECT pruned_at FROM inbox_pruned')).rows[0]).pruned_at;
  }

  const rowsOf = (consumers: readonly string[], positions: readonly number[]) =>
    positions.flatMap((position) => consumers.map((consumer) => `${consumer}@${position}`));

  it('removes the rows of the groups named at or below the position, and keeps every other row', async () => {
    const positions = await handledEvents(5, ['client-service', 'other-app', 'stock-service']);
    const through = positions[2] ?? 0;

    const pruned = await pruneInbox(pool, through, ['client-service', 'stock-service']);

    expect(pruned).toEqual({ position: through, rows: 6 });
    expect(await inbox()).toEqual([
      ...rowsOf(['other-app'], positions.slice(0, 3)),
      ...rowsOf(['client-service', 'other-app', 'stock-service'], positions.slice(3)),
    ]);
    expect(await readInboxPrunedThrough(pool)).toBe(through);
  });

  it('goes through a history longer than one step, step after step, up to the position', async () => {
    const positions = await handledEvents(7, ['stock-service']);
    const through = positions[5] ?? 0;

    const pruned = await pruneInbox(pool, through, ['stock-service'], 2);

    expect(pruned).toEqual({ position: through, rows: 6 });
    expect(await inbox()).toEqual(rowsOf(['stock-service'], positions.slice(6)));
    expect(await readInboxPrunedThrough(pool)).toBe(through);
  });

  it('never goes back: a position at or below the one pruned through removes nothing', async () => {
    const positions = await handledEvents(4, ['stock-service']);
    const through = positions[2] ?? 0;
    await pruneInbox(pool, through, ['stock-service']);
    const prunedAt = await lastPrunedAt();

    expect(await pruneInbox(pool, through, ['stock-service'])).toEqual({ position: through, rows: 0 });
    expect(await pruneInbox(pool, positions[0] ?? 0, ['stock-service'])).toEqual({
      position: through,
      rows: 0,
    });
    expect(await inbox()).toEqual(rowsOf(['stock-service'], positions.slice(3)));
    expect(await readInboxPrunedThrough(pool)).toBe(through);
    expect(await lastPrunedAt()).toEqual(prunedAt);
  });

  it('leaves the work to a process already pruning, without waiting for it, and says how far that one got', async () => {
    const positions = await handledEvents(3, ['stock-service']);
    await pruneInbox(pool, positions[0] ?? 0, ['stock-service']);
    const otherProcess = await pool.connect();
    try {
      await otherProcess.query('BEGIN');
      await otherProcess.query('SELECT position FROM inbox_pruned FOR UPDATE');

      const pruned = await pruneInbox(pool, positions[2] ?? 0, ['stock-service']);

      expect(pruned).toEqual({ position: positions[0], rows: 0 });
      expect(await inbox()).toEqual(rowsOf(['stock-service'], positions.slice(1)));
    } finally {
      await otherProcess.query('ROLLBACK');
      otherProcess.release();
    }
  });

  it('reads 0 as how far it was pruned before any record of it', async () => {
    await pool.query('DELETE FROM inbox_pruned');

    expect(await readInboxPrunedThrough(pool)).toBe(0);
  });
});
