import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnBus } from './support/buses.js';
import { capturingLogger } from './support/capturing-logger.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';
import { RedisServer } from './support/redis-server.js';
import { TestSystem } from './support/test-system.js';

// A Redis of its own, whose settings the test changes without touching the one other files share.
describeOnBus('redis', "Redis's maxmemory-policy is checked at start", () => {
  let redisServer: RedisServer;
  let redis: Redis;
  const systems: TestSystem[] = [];

  beforeAll(async () => {
    redisServer = new RedisServer(await freePort());
    await redisServer.start();
    redis = new Redis(redisServer.url, { protocol: 2 });
  });
  afterAll(async () => {
    for (const system of systems) await system.stop();
    redis?.disconnect();
    await redisServer?.kill();
  });

  async function startWithPolicy(policy: string) {
    await redis.call('CONFIG', 'SET', 'maxmemory-policy', policy);
    const { logger, lines } = capturingLogger('debug');
    systems.push(
      await TestSystem.start(`eviction_${policy.replace('-', '_')}`, {
        bus: 'redis',
        actors: ['relay'],
        config: { redisUrl: redisServer.url },
        choreo: { logger },
      }),
    );
    return eventually(
      async () => lines.filter(({ msg }) => String(msg).includes('maxmemory-policy')),
      (found) => found.length > 0,
      { description: 'a line about maxmemory-policy' },
    );
  }

  it('warns, naming the setting and what to set, when Redis may evict keys', async () => {
    const [line] = await startWithPolicy('allkeys-lru');
    expect(line).toMatchObject({ level: 40, maxmemoryPolicy: 'allkeys-lru' });
    expect(String(line?.msg)).toContain('maxmemory-policy allkeys-lru');
    expect(String(line?.msg)).toContain('Set maxmemory-policy noeviction');
  });

  it('says nothing above debug when Redis evicts nothing', async () => {
    const found = await startWithPolicy('noeviction');
    expect(found.map(({ level }) => level)).toEqual([20]);
  });
});
