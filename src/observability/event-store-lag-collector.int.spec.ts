import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { OUTBOX_RELAY_CHECKPOINT } from '../bus/redis-streams/outbox-relay.js';
import { CheckpointedReader } from '../persistence/checkpointed-reader.js';
import { createPool, type Pool } from '../persistence/database.js';
import { EventStoreNotifier } from '../persistence/event-store-notifier.js';
import { migrate } from '../persistence/migrate.js';
import { readEventStoreLag } from './event-store-lag-collector.js';

describe('the lag of the event store readers', () => {
  let database: TestDatabase;
  let pool: Pool;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    database = await createTestDatabase('reader_lag');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function append(count: number): Promise<void> {
    await pool.query(
      `INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, data)
       SELECT gen_random_uuid(), 'Test', agg, 1, 'test', agg, '{}'
         FROM (SELECT 'agg-' || gen_random_uuid() AS agg FROM generate_series(1, $1)) AS fresh`,
      [count],
    );
  }

  function reader(name: string, batchSize: number): CheckpointedReader {
    return new CheckpointedReader({
      name,
      pool,
      notifier: new EventStoreNotifier(database.url, logger),
      logger,
      batchSize,
      handle: async () => {},
    });
  }

  it('counts the events each reader has not handled yet', async () => {
    // given 5 events and a relay that never ran
    await append(5);
    expect(await readEventStoreLag(pool)).toEqual({ head: 5, relayLag: 5, projectionLags: new Map() });

    // when the relay handles a batch of 3 and a projection handles everything
    // (a reader waits while any older transaction on the server is in flight, other tests' too: poll)
    const relay = reader(OUTBOX_RELAY_CHECKPOINT, 3);
    await eventually(
      () => relay.processBatch(),
      (outcome) => outcome.kind === 'handled',
      { description: 'the relay batch' },
    );
    const projection = reader('projection:test', 100);
    await eventually(
      () => projection.processBatch(),
      (outcome) => outcome.kind === 'handled',
      {
        description: 'the projection batch',
      },
    );

    // then the relay is 2 behind and the projection caught up, until 4 more events come
    expect(await readEventStoreLag(pool)).toEqual({
      head: 5,
      relayLag: 2,
      projectionLags: new Map([['projection:test', 0]]),
    });
    await append(4);
    expect(await readEventStoreLag(pool)).toEqual({
      head: 9,
      relayLag: 6,
      projectionLags: new Map([['projection:test', 4]]),
    });
  });
});
