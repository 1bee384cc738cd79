import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { recreateDatabase } from './databases.js';
import type { Bus } from './options.js';
import type { Progress } from './progress.js';

/** What one saga costs in PostgreSQL transactions and Redis stream commands (fractions: averages). */
export interface SagaCost {
  transactions: number;
  xadd: number;
  xreadgroup: number;
  xack: number;
  /** The bus whose saga this cost was measured on; null for the hand count. */
  bus: Bus | null;
  /** Where the numbers come from, for the report. */
  source: string;
}

/**
 * Used only when the ceiling runs without the saga section (`--only ceiling`): the success path counted
 * from the code with one event per batch, the worst case. A full run measures the cost instead.
 */
export const COUNTED_SAGA_COST: SagaCost = {
  transactions: 10,
  xadd: 4,
  xreadgroup: 9,
  xack: 9,
  bus: null,
  source: 'counted from the code (no saga section in this run)',
};

export interface CeilingResult {
  cost: SagaCost;
  seconds: number;
  concurrency: number;
  sagaUnits: number;
  sagasPerSecond: number;
  transactionsPerSecond: number;
  redisOpsPerSecond: number;
}

/**
 * The machine's own limit for that cost: a minimal loop with raw pg and ioredis, no choreo logic. Each
 * "saga unit" commits 10 single-row INSERT transactions and issues 4 XADD, 9 XREADGROUP (COUNT 1) and
 * 9 XACK, unbatched, with many units in flight like choreo's concurrent consumers.
 */
export async function runCeiling(
  adminUrl: string,
  redisUrl: string,
  seconds: number,
  cost: SagaCost,
  progress: Progress,
): Promise<CeilingResult> {
  // The loop works in units of ten sagas, so that average costs like 3.4 transactions per saga are kept.
  const perTenSagas = (value: number) => Math.max(0, Math.round(value * 10));
  const transactions = perTenSagas(cost.transactions);
  const xadds = perTenSagas(cost.xadd);
  const reads = perTenSagas(cost.xreadgroup);
  const acks = perTenSagas(cost.xack);
  const databaseUrl = await recreateDatabase(adminUrl, 'choreo_bench_ceiling');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 });
  pool.on('error', () => {});
  const redis = new Redis(redisUrl, { protocol: 2 });
  const stream = `bench:ceiling:${randomBytes(4).toString('hex')}`;
  const groups = ['g1', 'g2', 'g3'];
  const concurrency = 32;
  try {
    await pool.query(
      'CREATE TABLE ceiling (id bigserial PRIMARY KEY, aggregate_id text NOT NULL, data jsonb NOT NULL)',
    );
    for (const group of groups) await redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM');
    // Something to read from the first iterations on.
    for (let index = 0; index < concurrency * 4; index += 1)
      await redis.xadd(stream, '*', 'event_id', String(index));
    const payload = JSON.stringify({
      client_id: 42,
      magasin_id: 1,
      produits: [{ produit_id: 1, quantite: 2 }],
      total: 15,
    });
    let units = 0;
    const start = performance.now();
    const deadline = start + seconds * 1_000;
    const ticker = setInterval(() => progress.update(`ceiling: ${units} saga units`), 250);
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        let readCount = 0;
        while (performance.now() < deadline) {
          for (let tx = 0; tx < transactions; tx += 1) {
            await pool.query('INSERT INTO ceiling (aggregate_id, data) VALUES ($1, $2)', [
              `w${worker}`,
              payload,
            ]);
          }
          for (let add = 0; add < xadds; add += 1) {
            await redis.xadd(
              stream,
              'MAXLEN',
              '~',
              '100000',
              '*',
              'event_id',
              `${worker}-${units}`,
              'data',
              payload,
            );
          }
          const pendingIds: string[] = [];
          for (let read = 0; read < reads; read += 1) {
            const group = groups[readCount++ % groups.length] as string;
            const reply = (await redis.call(
              'XREADGROUP',
              'GROUP',
              group,
              `c${worker}`,
              'COUNT',
              '1',
              'STREAMS',
              stream,
              '>',
            )) as [string, [string, string[]][]][] | null;
            const id = reply?.[0]?.[1]?.[0]?.[0];
            if (id) pendingIds.push(`${group} ${id}`);
          }
          for (let ack = 0; ack < acks; ack += 1) {
            const [group, id] = (pendingIds[ack] ?? `${groups[0]} 0-1`).split(' ');
            await redis.call('XACK', stream, group as string, id as string);
          }
          units += 10;
        }
      }),
    );
    clearInterval(ticker);
    const elapsed = (performance.now() - start) / 1_000;
    progress.done(`ceiling: ${Math.round(units / elapsed)} saga units/s`);
    return {
      seconds: elapsed,
      concurrency,
      cost,
      sagaUnits: units,
      sagasPerSecond: units / elapsed,
      transactionsPerSecond: ((units / 10) * transactions) / elapsed,
      redisOpsPerSecond: ((units / 10) * (xadds + reads + acks)) / elapsed,
    };
  } finally {
    await redis.del(stream).catch(() => 0);
    redis.disconnect();
    await pool.end();
  }
}
