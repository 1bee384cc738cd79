import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeNeeding } from '../../test/support/servers.js';
import { startupErrorOf } from '../../test/support/startup-error-of.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { createLogger } from '../observability/logger.js';
import { createPool, type Pool } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';
import { bindBus, DATABASE_BINDING_KEY } from './bus-binding.js';
import { StartupError } from './startup-error.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger('silent');

interface MigratedDatabase {
  database: TestDatabase;
  pool: Pool;
}

async function migratedDatabase(label: string): Promise<MigratedDatabase> {
  const database = await createTestDatabase(label);
  const pool = createPool(database.url, 2);
  await migrate(pool);
  return { database, pool };
}

async function closeDatabase(db: MigratedDatabase | undefined): Promise<void> {
  await db?.pool.end();
  await db?.database.drop();
}

function uniquePrefix(label: string): string {
  return `test:${label}:${randomBytes(4).toString('hex')}:`;
}

describe('the bus recorded in a database', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await migratedDatabase('bus_setting');
  });
  afterAll(() => closeDatabase(db));

  it('is recorded by the first process, and a process on the other bus refuses to start, saying why and what to set', async () => {
    // given a first process on the PostgreSQL bus
    await bindBus(db.pool, 'postgres', {
      redisUrl: REDIS_URL,
      streamPrefix: uniquePrefix('setting'),
      logger,
    });
    // then another on the same bus starts
    await bindBus(db.pool, 'postgres', {
      redisUrl: REDIS_URL,
      streamPrefix: uniquePrefix('setting'),
      logger,
    });

    // when one would use Redis
    const error = await startupErrorOf(
      bindBus(db.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: uniquePrefix('setting'), logger }),
    );

    // then it refuses, and says why and what to do
    expect(error.message).toContain('carried on the PostgreSQL bus (BUS=postgres)');
    expect(error.message).toContain('would each see half of the events');
    expect(error.message).toContain('Set BUS=postgres');
    expect(error.message).toContain('BUS_REBIND=1');
    const { rows } = await db.pool.query(`SELECT value FROM choreo_settings WHERE key = 'bus'`);
    expect(rows).toEqual([{ value: 'postgres' }]);
  });

  it('moves to the other bus with BUS_REBIND, after which the old bus is refused', async () => {
    // given a database on the PostgreSQL bus (previous test), rebound to Redis
    await bindDatabaseOnly(db.pool, 'redis', true);
    const { rows } = await db.pool.query(`SELECT value FROM choreo_settings WHERE key = 'bus'`);
    expect(rows).toEqual([{ value: 'redis' }]);

    // when a process starts on the PostgreSQL bus, then it refuses and says to set BUS=redis
    const error = await startupErrorOf(
      bindBus(db.pool, 'postgres', { redisUrl: REDIS_URL, streamPrefix: uniquePrefix('rebind'), logger }),
    );
    expect(error.message).toContain('Set BUS=redis and REDIS_URL');
  });

  /** The database side only: rebinding to Redis reaches Redis next, which this test does not need. */
  async function bindDatabaseOnly(pool: Pool, bus: 'redis' | 'postgres', rebind: boolean): Promise<void> {
    await bindBus(pool, bus, {
      redisUrl: REDIS_URL,
      streamPrefix: uniquePrefix('rebind'),
      logger,
      rebind,
    }).catch((error: unknown) => {
      // Without a Redis, binding the prefix fails after the bus was recorded: that part is tested below.
      if (!(error instanceof StartupError && error.message.includes('STREAM_PREFIX'))) throw error;
    });
  }
});

describeNeeding(['redis'], 'the database bound to a Redis prefix', () => {
  let first: MigratedDatabase;
  let second: MigratedDatabase;
  let redis: Redis;
  const prefix = uniquePrefix('prefix');

  beforeAll(async () => {
    first = await migratedDatabase('prefix_first');
    second = await migratedDatabase('prefix_second');
    redis = new Redis(REDIS_URL, { protocol: 2 });
  });
  afterAll(async () => {
    await redis?.del(`${prefix}${DATABASE_BINDING_KEY}`);
    redis?.disconnect();
    await closeDatabase(first);
    await closeDatabase(second);
  });

  it('is the first database to use the prefix; a process of another database refuses, naming STREAM_PREFIX and how to release it', async () => {
    // given the first database bound to the prefix, and another process of it starting again
    await bindBus(first.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger });
    await bindBus(first.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger });

    // when a process of the second database starts on the same prefix
    const error = await startupErrorOf(
      bindBus(second.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger }),
    );

    // then it refuses, naming both databases, the prefix, and the command that releases it
    expect(error.message).toContain(`STREAM_PREFIX=${JSON.stringify(prefix)}`);
    expect(error.message).toContain(`database "${first.database.name}"`);
    expect(error.message).toContain(`database "${second.database.name}"`);
    expect(error.message).toContain(`DEL ${prefix}${DATABASE_BINDING_KEY}`);
    expect(error.message).toContain('npm run reset');
  });

  it('names the empty prefix too', async () => {
    const error = await startupErrorOf(
      bindBus(second.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger }),
    );
    expect(error.message).toMatch(/STREAM_PREFIX="test:prefix:[0-9a-f]{8}:"/);
  });

  it('goes to the second database once the binding is released', async () => {
    await redis.del(`${prefix}${DATABASE_BINDING_KEY}`);
    await bindBus(second.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger });
    const error = await startupErrorOf(
      bindBus(first.pool, 'redis', { redisUrl: REDIS_URL, streamPrefix: prefix, logger }),
    );
    expect(error.message).toContain(`this process uses database "${first.database.name}"`);
  });
});
