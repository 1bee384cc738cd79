import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { createPool, type Pool, withTransaction } from './database.js';
import { appendToStream } from './event-store.js';
import { EventStoreNotifier } from './event-store-notifier.js';
import { migrate } from './migrate.js';

/** Two processes sharing one database, each with its pool and its notifier. */
describe('the event store notifier', () => {
  let database: TestDatabase;
  let here: Pool;
  let there: Pool;
  const notifiers: EventStoreNotifier[] = [];
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    database = await createTestDatabase('notifier');
    here = createPool(database.url);
    there = createPool(database.url);
    await migrate(here);
  });
  afterAll(async () => {
    await Promise.all(notifiers.map((notifier) => notifier.close()));
    await here?.end();
    await there?.end();
    await database?.drop();
  });

  async function countingWakes(pool: Pool): Promise<{ wakes: () => number }> {
    const notifier = new EventStoreNotifier(database.url, logger, pool);
    notifiers.push(notifier);
    let wakes = 0;
    notifier.subscribe(() => {
      wakes += 1;
    });
    await notifier.start();
    return { wakes: () => wakes };
  }

  it("wakes this process's readers once per commit, and the other processes' with its NOTIFY", async () => {
    const local = await countingWakes(here);
    const remote = await countingWakes(there);
    const [localBefore, remoteBefore] = [local.wakes(), remote.wakes()];

    // when this process commits an append
    await withTransaction(here, (tx) =>
      appendToStream(tx, 'notified-1', 0, [
        { event_type: 'ClientCree', source: 'test', causation_id: null, data: { client_id: 1, solde: 1 } },
      ]),
    );

    // then its readers are woken at once, and the other process's by the NOTIFY that follows
    expect(local.wakes()).toBe(localBefore + 1);
    await eventually(
      async () => remote.wakes(),
      (wakes) => wakes === remoteBefore + 1,
      {
        description: 'the other process woken',
      },
    );
    // and that NOTIFY, delivered to this process too before anything sent later, did not wake it again
    await there.query("SELECT pg_notify('choreo_events', 'a later append elsewhere')");
    await eventually(
      async () => local.wakes(),
      (wakes) => wakes >= localBefore + 2,
      {
        description: 'the later notification received',
      },
    );
    expect(local.wakes()).toBe(localBefore + 2);
  });
});
