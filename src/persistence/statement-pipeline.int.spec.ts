import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { VersionConflictError } from '../domain/errors.js';
import type { NewEvent } from '../domain/events.js';
import { createPool, type Pool, type PoolClient, withTransaction } from './database.js';
import { appendToStream, holdAppend, readStream } from './event-store.js';
import { migrate } from './migrate.js';
import { holdStatement } from './statement-pipeline.js';

const libere: NewEvent = {
  event_type: 'StockLibere',
  source: 'stock-service',
  causation_id: null,
  data: { magasin_id: 1, produits: [], raison: 'test' },
};

class HeldWriteFailed extends Error {}

/** Counts the writes on the client's socket from now on: one per batch of messages sent together. */
function countSocketWrites(tx: PoolClient): () => number {
  const socket = tx.connection.stream as Duplex & {
    _write: (...args: unknown[]) => unknown;
    _writev: (...args: unknown[]) => unknown;
  };
  let writes = 0;
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket);
    socket[method] = (...args: unknown[]) => {
      writes += 1;
      return original(...args);
    };
  }
  return () => writes;
}

describe('statements held for the next one (pipelined transactions)', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('statement_pipeline');
    pool = createPool(database.url, 2);
    await migrate(pool);
    await pool.query('CREATE TABLE notes (id int PRIMARY KEY, text text NOT NULL)');
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  const notes = async (): Promise<number[]> =>
    (await pool.query<{ id: number }>('SELECT id FROM notes ORDER BY id')).rows.map((row) => row.id);

  it('sends BEGIN with the first statement and the held writes with the COMMIT: one write each', async () => {
    let writesDuringWork = 0;
    let writes: () => number = () => 0;
    await withTransaction(pool, async (tx) => {
      writes = countSocketWrites(tx);
      await tx.query('SELECT $1::int', [1]);
      writesDuringWork = writes();
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [1, 'one']);
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [2, 'two']);
    });

    // BEGIN was held when the counting started: it went out with the SELECT.
    expect(writesDuringWork).toBe(1);
    expect(writes()).toBe(2);
    expect(await notes()).toEqual(expect.arrayContaining([1, 2]));
  });

  it('runs held statements before the statement that carries them, which sees their effects', async () => {
    const seen = await withTransaction(pool, async (tx) => {
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [10, 'ten']);
      const found = await tx.query('SELECT text FROM notes WHERE id = $1', [10]);
      return found.rows[0]?.text;
    });

    expect(seen).toBe('ten');
  });

  it('fails the carrying statement with the held one’s error, mapped, and rolls everything back', async () => {
    await pool.query("INSERT INTO notes (id, text) VALUES (20, 'taken')");

    const attempt = withTransaction(pool, async (tx) => {
      await tx.query("INSERT INTO notes (id, text) VALUES (21, 'before')");
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [20, 'duplicate'], () => {
        return new HeldWriteFailed('note 20 exists');
      });
      await tx.query('SELECT 1');
    });

    await expect(attempt).rejects.toBeInstanceOf(HeldWriteFailed);
    expect(await notes()).not.toContain(21);
  });

  it('fails the transaction when a statement held for the COMMIT fails: nothing is committed', async () => {
    const attempt = withTransaction(pool, async (tx) => {
      await tx.query("INSERT INTO notes (id, text) VALUES (30, 'before')");
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, NULL)', [31], () => new HeldWriteFailed());
    });

    await expect(attempt).rejects.toBeInstanceOf(HeldWriteFailed);
    expect(await notes()).not.toContain(30);
  });

  it('does not report a commit when an error inside the transaction was swallowed', async () => {
    const attempt = withTransaction(pool, async (tx) => {
      await tx.query("INSERT INTO notes (id, text) VALUES (40, 'before')");
      await tx.query('SELECT * FROM no_such_table').catch(() => {});
    });

    await expect(attempt).rejects.toThrow(/rolled back/);
    expect(await notes()).not.toContain(40);
  });

  it('does not commit when a held statement fails in the driver, before PostgreSQL sees it', async () => {
    const unbindable = {
      toPostgres: () => {
        throw new HeldWriteFailed('this value cannot be sent');
      },
    };

    const attempt = withTransaction(pool, async (tx) => {
      await tx.query("INSERT INTO notes (id, text) VALUES (60, 'before')");
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [61, unbindable]);
    });

    await expect(attempt).rejects.toBeInstanceOf(HeldWriteFailed);
    expect(await notes()).not.toContain(60);
  });

  it('reports a swallowed error as a rollback even when a statement was held after it', async () => {
    const attempt = withTransaction(pool, async (tx) => {
      await tx.query("INSERT INTO notes (id, text) VALUES (70, 'before')");
      await tx.query('SELECT * FROM no_such_table').catch(() => {});
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [71, 'after']);
    });

    await expect(attempt).rejects.toThrow(/rolled back/);
    expect(await notes()).not.toContain(70);
  });

  it('does not pass off the failure of a statement held before an append as a version conflict', async () => {
    await pool.query("INSERT INTO notes (id, text) VALUES (80, 'taken')");

    // the held insert fails on the notes' primary key: a unique violation, like a concurrent append's
    const attempt = withTransaction(pool, async (tx) => {
      holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, $2)', [80, 'duplicate']);
      await appendToStream(tx, 'cmd-after-held', 0, [libere]);
    });

    await expect(attempt).rejects.toThrow(/notes_pkey/);
    await expect(attempt).rejects.not.toBeInstanceOf(VersionConflictError);
    expect(await readStream(pool, 'cmd-after-held')).toHaveLength(0);
  });

  it('leaves the connection usable after a failed transaction', async () => {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await expect(
        withTransaction(pool, async (tx) => {
          holdStatement(tx, 'INSERT INTO notes (id, text) VALUES ($1, NULL)', [50]);
        }),
      ).rejects.toThrow();
    }

    const sum = await withTransaction(
      pool,
      async (tx) => (await tx.query('SELECT 1 + 1 AS sum')).rows[0]?.sum,
    );
    expect(sum).toBe(2);
  });

  it('turns a held append at a stale version into a VersionConflictError, appending nothing', async () => {
    await withTransaction(pool, (tx) => appendToStream(tx, 'cmd-held', 0, [libere]));

    const stale = withTransaction(pool, async (tx) => {
      holdAppend(tx, [{ aggregateId: 'cmd-held', expectedVersion: 0, events: [libere] }]);
      holdAppend(tx, [{ aggregateId: 'cmd-held-other', expectedVersion: 0, events: [libere] }]);
    });

    await expect(stale).rejects.toBeInstanceOf(VersionConflictError);
    expect(await readStream(pool, 'cmd-held')).toHaveLength(1);
    expect(await readStream(pool, 'cmd-held-other')).toHaveLength(0);
  });

  it('appends what was held once the transaction commits', async () => {
    await withTransaction(pool, async (tx) => {
      holdAppend(tx, [
        { aggregateId: 'cmd-held-a', expectedVersion: 0, events: [libere, libere] },
        { aggregateId: 'cmd-held-b', expectedVersion: 0, events: [libere] },
      ]);
    });

    expect((await readStream(pool, 'cmd-held-a')).map((event) => event.version)).toEqual([1, 2]);
    expect(await readStream(pool, 'cmd-held-b')).toHaveLength(1);
  });
});
