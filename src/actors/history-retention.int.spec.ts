import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { capturingLogger } from '../../test/support/capturing-logger.js';
import { eventually } from '../../test/support/eventually.js';
import { NEW_EVENTS } from '../../test/support/new-events.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { createPool, type Pool } from '../persistence/database.js';
import { appendToStream } from '../persistence/event-store.js';
import { migrate } from '../persistence/migrate.js';
import { HistoryRetention, type HistoryRetentionOptions, type PruneReport } from './history-retention.js';

const RETENTION_MS = 60_000;
const countSchema = z.object({ count: z.coerce.number().int() });

describe('the history retention', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('history_retention_runs');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** An event handled by `consumer`; its position. */
  async function handledEvent(consumer: string): Promise<number> {
    const [stored] = await appendToStream(pool, `cmd-${randomUUID()}`, 0, [NEW_EVENTS.CommandeCreee]);
    if (!stored) throw new Error('nothing appended');
    await pool.query('INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)', [consumer, stored.event_id]);
    return stored.position;
  }

  /** An Idempotency-Key of a checkout made `minutesAgo` minutes ago. */
  async function idempotencyKey(minutesAgo: number): Promise<string> {
    const key = randomUUID();
    await pool.query(
      `INSERT INTO checkouts (client_id, idempotency_key, commande_id, created_at)
       VALUES (1, $1, $2, now() - make_interval(mins => $3))`,
      [key, `cmd-${randomUUID()}`, minutesAgo],
    );
    return key;
  }

  async function count(sql: string, values: unknown[] = []): Promise<number> {
    return countSchema.parse((await pool.query(sql, values)).rows[0]).count;
  }

  function retention(options: Partial<HistoryRetentionOptions> & Pick<HistoryRetentionOptions, 'bus'>) {
    const { logger, lines } = capturingLogger('debug');
    const reports: PruneReport[] = [];
    const history = new HistoryRetention({
      pool,
      consumers: ['stock-service'],
      idempotencyKeyRetentionMs: RETENTION_MS,
      logger,
      onPruned: (report) => reports.push(report),
      ...options,
    });
    return { history, lines, reports };
  }

  it('removes the inbox rows every group handled and the keys past their retention, and says what it removed', async () => {
    const handled = await handledEvent('stock-service');
    const notYet = await handledEvent('stock-service');
    const old = await idempotencyKey(2);
    const recent = await idempotencyKey(0);
    const { history, lines, reports } = retention({ bus: { handledThrough: async () => handled } });

    const report = await history.pruneOnce();

    expect(report).toEqual({ inboxPrunedThrough: handled, inboxRows: 1, idempotencyKeys: 1 });
    expect(reports).toEqual([report]);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'history pruned', ...report }));
    expect(
      await count('SELECT count(*) FROM inbox AS i JOIN events AS e USING (event_id) WHERE e.position = $1', [
        notYet,
      ]),
    ).toBe(1);
    expect(
      await count('SELECT count(*) FROM checkouts WHERE idempotency_key = ANY($1)', [[old, recent]]),
    ).toBe(1);
    expect(await count('SELECT count(*) FROM checkouts WHERE idempotency_key = $1', [recent])).toBe(1);
  });

  it('says when a run removed inbox rows or keys, and not when it removed nothing', async () => {
    let through = await handledEvent('stock-service');
    // nobody is told of the runs: the report is only returned
    const { history, lines } = retention({
      bus: { handledThrough: async () => through },
      onPruned: undefined,
    });
    const logged = async () => {
      const before = lines.length;
      const report = await history.pruneOnce();
      return { report, logged: lines.slice(before).filter((line) => line.msg === 'history pruned').length };
    };

    const inboxOnly = await logged();
    expect(inboxOnly.report.inboxRows).toBeGreaterThan(0);
    expect(inboxOnly).toMatchObject({ report: { idempotencyKeys: 0 }, logged: 1 });
    await idempotencyKey(2);
    expect(await logged()).toMatchObject({ report: { inboxRows: 0, idempotencyKeys: 1 }, logged: 1 });
    through = await appendToStream(pool, `cmd-${randomUUID()}`, 0, [NEW_EVENTS.CommandeCreee]).then(
      ([stored]) => stored?.position ?? 0,
    );
    expect(await logged()).toEqual({
      report: { inboxPrunedThrough: through, inboxRows: 0, idempotencyKeys: 0 },
      logged: 0,
    });
  });

  it('runs at its interval, says when a run fails, and goes on with the next', async () => {
    const through = await handledEvent('stock-service');
    let asked = 0;
    const { history, lines, reports } = retention({
      intervalMs: 10,
      bus: {
        handledThrough: async () => {
          asked += 1;
          if (asked === 1) throw new Error('the bus is away');
          return through;
        },
      },
    });

    history.start();
    try {
      await eventually(
        async () => reports.length,
        (runs) => runs > 0,
        { timeoutMs: 5_000, description: 'a run after the failed one' },
      );
    } finally {
      await history.stop();
    }

    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: 'pruning the inbox and the idempotency keys failed: the bus is away; retrying',
      }),
    );
    expect(reports[0]?.inboxPrunedThrough).toBe(through);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 30,
        msg: expect.stringMatching(/^pruning the inbox and the idempotency keys works again/),
      }),
    );
  });

  it('keeps one timer when started twice, starts no run while one is going, and stops only once it is done', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let answer: (position: number) => void = () => {};
    let asked = 0;
    const { history } = retention({
      intervalMs: 1_000,
      bus: {
        handledThrough: () => {
          asked += 1;
          return new Promise<number>((resolve) => (answer = resolve));
        },
      },
    });

    history.start();
    history.start();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1_000);
    vi.advanceTimersByTime(1_000);
    expect(asked).toBe(1);
    let stopped = false;
    const stopping = history.stop().then(() => {
      stopped = true;
    });
    expect(vi.getTimerCount()).toBe(0);
    // the run is waiting for the bus: stop waits with it
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);

    answer(0);
    await stopping;
    expect(stopped).toBe(true);
  });
});
