import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import type { StoredEvent } from '../domain/events.js';
import { CheckpointedReader } from './checkpointed-reader.js';
import { createPool, type Pool, type PoolClient } from './database.js';
import { EventStoreNotifier } from './event-store-notifier.js';
import { migrate } from './migrate.js';

describe('a checkpointed reader of the event store', () => {
  let database: TestDatabase;
  let pool: Pool;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    database = await createTestDatabase('reader');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function insertEvent(client: Pool | PoolClient, aggregateId: string): Promise<number> {
    const result = await client.query(
      `INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, data)
       VALUES (gen_random_uuid(), 'Test', $1, 1, 'test', $1, '{}') RETURNING position`,
      [aggregateId],
    );
    return Number(result.rows[0].position);
  }

  function readerCollecting(name: string, seen: StoredEvent[]): CheckpointedReader {
    return new CheckpointedReader({
      name,
      pool,
      notifier: new EventStoreNotifier(database.url, logger),
      logger,
      handle: async (_tx, events) => {
        seen.push(...events);
      },
    });
  }

  async function drain(reader: CheckpointedReader): Promise<void> {
    while ((await reader.processBatch()).kind === 'handled') {}
  }

  /** Rows wait while any older transaction on the server is in flight (other tests' too), so poll. */
  async function drainUntil(reader: CheckpointedReader, seen: StoredEvent[], count: number): Promise<void> {
    await eventually(
      async () => {
        await drain(reader);
        return seen.length;
      },
      (length) => length >= count,
      { description: `${count} events read` },
    );
  }

  for (const xidOrder of [
    'early transaction took its id first',
    'late transaction took its id first',
  ] as const) {
    it(`never skips a row whose transaction commits after a later one (${xidOrder})`, async () => {
      const seen: StoredEvent[] = [];
      const reader = readerCollecting(`late-commit-${xidOrder.length}`, seen);
      await drain(reader);
      seen.length = 0;
      const slow = await pool.connect();
      const fast = await pool.connect();
      try {
        // given two overlapping transactions: the slow one inserts first (lower position) but commits last
        await slow.query('BEGIN');
        await fast.query('BEGIN');
        if (xidOrder === 'early transaction took its id first') {
          await slow.query('SELECT pg_current_xact_id()');
          await fast.query('SELECT pg_current_xact_id()');
        } else {
          await fast.query('SELECT pg_current_xact_id()');
          await slow.query('SELECT pg_current_xact_id()');
        }
        const slowPosition = await insertEvent(slow, `slow-${xidOrder}`);
        const fastPosition = await insertEvent(fast, `fast-${xidOrder}`);
        expect(slowPosition).toBeLessThan(fastPosition);
        await fast.query('COMMIT');

        // when the reader runs (twice: the second run knows the hole) while the slow one is still in
        // flight, then again after it commits
        await drain(reader);
        await drain(reader);
        expect(seen).toEqual([]);
        await slow.query('COMMIT');
        await drainUntil(reader, seen, 2);

        // then it has seen both rows, each once
        expect(seen.map((event) => event.position).sort((a, b) => a - b)).toEqual([
          slowPosition,
          fastPosition,
        ]);
      } finally {
        slow.release();
        fast.release();
      }
    });
  }

  it('resumes from its checkpoint: a second reader of the same name sees only what came after', async () => {
    const first: StoredEvent[] = [];
    await drain(readerCollecting('resume', first));
    const position = await insertEvent(pool, 'resume-after');
    const second: StoredEvent[] = [];

    await drainUntil(readerCollecting('resume', second), second, 1);

    expect(second.map((event) => event.position)).toEqual([position]);
  });

  it('reads every committed event once and no rolled-back one, under writers committing in any order', async () => {
    const seen: StoredEvent[] = [];
    const reader = readerCollecting('concurrent-writers', seen);
    await drain(reader);
    seen.length = 0;
    const committed: number[] = [];
    const rolledBack: number[] = [];
    let writing = true;

    // given 8 writers, each running 25 transactions that take their id at once or after a pause, append
    // 1-3 events, pause a random moment, and commit (or, one in ten, roll back)
    async function writer(index: number): Promise<void> {
      const client = await pool.connect();
      try {
        for (let round = 0; round < 25; round += 1) {
          await client.query('BEGIN');
          // Writers take their transaction id before any position (appendToStream's statement does);
          // here either at once or after a pause, so that ids and positions interleave across writers.
          if (Math.random() < 0.5) await client.query('SELECT pg_sleep($1)', [Math.random() * 0.002]);
          await client.query('SELECT pg_current_xact_id()');
          const positions: number[] = [];
          for (let count = 1 + Math.floor(Math.random() * 3); count > 0; count -= 1) {
            positions.push(await insertEvent(client, `writer-${index}-${round}-${count}`));
          }
          await client.query('SELECT pg_sleep($1)', [Math.random() * 0.004]);
          const commit = Math.random() >= 0.1;
          await client.query(commit ? 'COMMIT' : 'ROLLBACK');
          (commit ? committed : rolledBack).push(...positions);
        }
      } finally {
        client.release();
      }
    }

    // when the reader keeps reading while they write, and until it has caught up
    const reading = (async () => {
      while (writing) await drain(reader);
    })();
    await Promise.all(Array.from({ length: 8 }, (_, index) => writer(index)));
    writing = false;
    await reading;
    await drainUntil(reader, seen, committed.length);

    // then it has read exactly the committed events, each once, in position order
    const read = seen.map((event) => event.position);
    expect(read).toEqual([...committed].sort((a, b) => a - b));
    expect(rolledBack.length).toBeGreaterThan(0);
  });

  // Last: the hole it leaves would hold up a reader of a later test that starts from position 0.
  it('warns, naming it, of a transaction left open that keeps it waiting at a hole, then passes the hole', async () => {
    const warnings: { msg: string; blockers?: { pid: number; application_name: string }[] }[] = [];
    const capturing = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    const seen: StoredEvent[] = [];
    const reader = new CheckpointedReader({
      name: 'hole-watch',
      pool,
      notifier: new EventStoreNotifier(database.url, logger),
      logger: capturing,
      holeWarnAfterMs: 200,
      handle: async (_tx, events) => {
        seen.push(...events);
      },
    });
    await drain(reader);
    seen.length = 0;
    const forgotten = await pool.connect();
    const writer = await pool.connect();
    try {
      // given a session that wrote something and was left open, and a hole left after it by a rollback
      await forgotten.query("SET application_name = 'forgotten-session'");
      await forgotten.query('BEGIN');
      await forgotten.query('SELECT pg_current_xact_id()');
      const forgottenPid = (await forgotten.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await writer.query('BEGIN');
      await insertEvent(writer, 'hole-watch-rolled-back');
      await writer.query('ROLLBACK');
      const after = await insertEvent(pool, 'hole-watch-after');

      // when the reader runs
      reader.start();

      // then it waits at the hole, and says which session holds it
      const blockers = await eventually(
        async () => warnings.flatMap((warning) => warning.blockers ?? []),
        (named) => named.some((blocker) => blocker.pid === forgottenPid),
        { description: 'a warning naming the forgotten session', timeoutMs: 10_000 },
      );
      expect(seen.filter((event) => event.position >= after)).toEqual([]);
      expect(blockers).toContainEqual(
        expect.objectContaining({ pid: forgottenPid, application_name: 'forgotten-session' }),
      );

      // and once that session ends, it passes the hole
      await forgotten.query('COMMIT');
      await eventually(
        async () => seen.map((event) => event.position),
        (positions) => positions.includes(after),
        { description: 'the event after the hole read', timeoutMs: 10_000 },
      );
    } finally {
      await reader.stop();
      await forgotten.query('ROLLBACK');
      forgotten.release();
      writer.release();
    }
  });
});
