import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import type { NewEvent } from '../domain/events.js';
import { createPool, type Pool, type PoolClient, withTransaction } from './database.js';
import { appendToStream, readAllGapSafe } from './event-store.js';
import { migrate } from './migrate.js';

const event: NewEvent = {
  event_type: 'PaiementAccepte',
  source: 'test',
  causation_id: null,
  data: { client_id: 1, magasin_id: 1, total: 1 },
};

describe('readAllGapSafe', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('gap_safe');
    pool = createPool(database.url, 5);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function begin(): Promise<PoolClient> {
    const client = await pool.connect();
    await client.query('BEGIN');
    return client;
  }

  it('does not read past a position whose transaction commits later, then reads it', async () => {
    // given an older transaction (its id taken first) and a younger one that appends first (position p),
    const older = await begin();
    await older.query('SELECT pg_current_xact_id()');
    const younger = await begin();
    await appendToStream(younger, 'cmd-younger', 0, [event]);
    // while the older one appends after it (position p + 1) and commits first
    await appendToStream(older, 'cmd-older', 0, [event]);
    await older.query('COMMIT');
    older.release();

    // when a reader reads from the start
    const first = await readAllGapSafe(pool, 0, 100);

    // then it stops before the hole instead of skipping position p
    expect(first.events.map((e) => e.aggregate_id)).toEqual([]);
    expect(first.gap).not.toBeNull();

    // and once the younger transaction commits, both come in position order
    await younger.query('COMMIT');
    younger.release();
    const second = await readAllGapSafe(pool, 0, 100, first.gap);
    expect(second.events.map((e) => e.aggregate_id)).toEqual(['cmd-younger', 'cmd-older']);
    expect(second.gap).toBeNull();
  });

  it('does not pass the hole of a transaction still running whose id is the newest', async () => {
    const after = (await readAllGapSafe(pool, 0, 1_000)).events.at(-1)?.position ?? 0;
    // given an older transaction, and a younger one (the newest id) that appends first (position p),
    const older = await begin();
    await older.query('SELECT pg_current_xact_id()');
    const younger = await begin();
    await appendToStream(younger, 'cmd-newest', 0, [event]);
    // while the older one appends after it (position p + 1) and commits: the snapshot's xmax is then the
    // younger one's id, and an xmin computed below that xmax does not count it
    await appendToStream(older, 'cmd-finished', 0, [event]);
    await older.query('COMMIT');
    older.release();

    // when a reader meets the hole, and reads again while the younger transaction still runs
    const first = await readAllGapSafe(pool, after, 100);
    const second = await readAllGapSafe(pool, after, 100, first.gap);

    // then it still waits at the hole rather than taking it for a rollback
    expect(second.events.map((e) => e.aggregate_id)).toEqual([]);
    expect(second.gap).not.toBeNull();
    await younger.query('COMMIT');
    younger.release();
    const third = await readAllGapSafe(pool, after, 100, second.gap);
    expect(third.events.map((e) => e.aggregate_id)).toEqual(['cmd-newest', 'cmd-finished']);
  });

  it('passes a hole left by a rollback once the transactions running when it was seen have ended', async () => {
    const after = (await readAllGapSafe(pool, 0, 1_000)).events.at(-1)?.position ?? 0;
    // given a transaction that took a position, and a later one that committed
    const doomed = await begin();
    await appendToStream(doomed, 'cmd-doomed', 0, [event]);
    await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-kept', 0, [event]));
    const blocked = await readAllGapSafe(pool, after, 100);
    expect(blocked.events).toEqual([]);

    // when the first one rolls back
    await doomed.query('ROLLBACK');
    doomed.release();

    // then, once every transaction of the server that was running then has ended (other test files share
    // the server, so this may take a moment), the hole is known to be for good and the reader goes on
    const resumed = await eventually(
      () => readAllGapSafe(pool, after, 100, blocked.gap),
      (batch) => batch.events.length > 0,
      { description: 'the reader to pass the rolled-back position' },
    );
    expect(resumed.events.map((e) => e.aggregate_id)).toEqual(['cmd-kept']);
    expect(resumed.gap).toBeNull();
  });
});
