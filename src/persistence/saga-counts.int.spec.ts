import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { createPool, type Pool } from './database.js';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { recountSagas } from './saga-counts.js';

describe('the count of sagas in each state, as migration 008 starts it and a recount redoes it', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('saga_counts');
    pool = createPool(database.url);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function insertSagas(statuts: string[]): Promise<void> {
    await pool.query(
      `INSERT INTO sagas (commande_id, statut, version, final, started_at, updated_at)
       SELECT 'cmd-' || gen_random_uuid(), statut, 1, false, now(), now() FROM unnest($1::text[]) AS statut`,
      [statuts],
    );
  }

  /** The counts, without the states left at 0. */
  async function counts(): Promise<Record<string, number>> {
    const result = await pool.query(
      'SELECT statut, commandes::int AS commandes FROM saga_counts WHERE commandes <> 0 ORDER BY statut',
    );
    return Object.fromEntries(result.rows.map((row) => [row.statut, row.commandes]));
  }

  async function grouped(): Promise<Record<string, number>> {
    const result = await pool.query(
      'SELECT statut, count(*)::int AS commandes FROM sagas GROUP BY statut ORDER BY statut',
    );
    return Object.fromEntries(result.rows.map((row) => [row.statut, row.commandes]));
  }

  it('counts the sagas already there when it is applied', async () => {
    // given sagas written before the migration
    await migrate(
      pool,
      MIGRATIONS.filter((migration) => migration.version < 8),
    );
    await insertSagas(['en_attente_stock', 'en_attente_stock', 'vente_confirmee']);

    // when the migration runs
    await migrate(pool);

    // then they are counted, as a GROUP BY of the table would count them
    expect(await counts()).toEqual({ en_attente_stock: 2, vente_confirmee: 1 });
    expect(await counts()).toEqual(await grouped());
  });

  it('is made right again by a recount, after sagas were written without counting them', async () => {
    // given sagas written as code older than the counts writes them (rows only), while counts exist
    await migrate(pool);
    await insertSagas(['stock_reserve', 'stock_reserve', 'annulee']);
    await pool.query("UPDATE saga_counts SET commandes = commandes + 5 WHERE statut = 'vente_confirmee'");
    expect(await counts()).not.toEqual(await grouped());

    // when they are recounted
    const recounted = await recountSagas(pool);

    // then the counts are the table's again, and the recount says what it found
    expect(await counts()).toEqual(await grouped());
    expect(recounted).toEqual(await grouped());
  });
});
