import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { recreateDatabase } from './databases.js';
import type { Progress } from './progress.js';

/**
 * What one saga costs choreo, counted from the code (ACTORS=all, success path):
 * - PostgreSQL transactions: checkout 1; stock-service 3 (CommandeCreee, PaiementAccepte marked handled,
 *   VenteConfirmee); client-service 1; ventes-service 1; commande-saga 4 (one per event). The relay and the
 *   projection commit once per batch of up to 500 events, so they are left out.
 * - Redis stream operations: 4 XADD (one per event), 9 deliveries to consumer groups (commande.evenements
 *   → 2 groups, stock.evenements → 2, paiement.evenements → 3, vente.evenements → 2), each read by
 *   XREADGROUP and acknowledged by XACK.
 */
export const SAGA_COST = { transactions: 10, xadd: 4, deliveries: 9 } as const;

export interface CeilingResult {
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
  progress: Progress,
): Promise<CeilingResult> {
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
        let reads = 0;
        while (performance.now() < deadline) {
          for (let tx = 0; tx < SAGA_COST.transactions; tx += 1) {
            await pool.query('INSERT INTO ceiling (aggregate_id, data) VALUES ($1, $2)', [
              `w${worker}`,
              payload,
            ]);
          }
          for (let add = 0; add < SAGA_COST.xadd; add += 1) {
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
          for (let read = 0; read < SAGA_COST.deliveries; read += 1) {
            const group = groups[reads++ % groups.length] as string;
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
            if (id) await redis.call('XACK', stream, group, id);
            else await redis.call('XACK', stream, group, '0-1');
          }
          units += 1;
        }
      }),
    );
    clearInterval(ticker);
    const elapsed = (performance.now() - start) / 1_000;
    progress.done(`ceiling: ${Math.round(units / elapsed)} saga units/s`);
    return {
      seconds: elapsed,
      concurrency,
      sagaUnits: units,
      sagasPerSecond: units / elapsed,
      transactionsPerSecond: (units * SAGA_COST.transactions) / elapsed,
      redisOpsPerSecond: (units * (SAGA_COST.xadd + 2 * SAGA_COST.deliveries)) / elapsed,
    };
  } finally {
    await redis.del(stream).catch(() => 0);
    redis.disconnect();
    await pool.end();
  }
}
