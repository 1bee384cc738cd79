import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';
import { HttpClient } from './support/http-client.js';
import { RedisServer } from './support/redis-server.js';
import { describeNeeding } from './support/servers.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { TEST_STAFF_TOKEN } from './support/test-system.js';
import { WorkerProcess } from './support/worker-process.js';

const readinessSchema = z.object({
  status: z.string(),
  bus: z.string(),
  postgres: z.string(),
  redis: z.string(),
});
const messageSchema = z.object({ message: z.string() });

describeNeeding(['redis'], 'the Redis of a running choreo goes away', () => {
  let database: TestDatabase;
  let redis: RedisServer;
  let worker: WorkerProcess;
  let api: HttpClient;

  beforeAll(async () => {
    database = await createTestDatabase('redis_unreachable');
    redis = new RedisServer(await freePort());
    await redis.start();
    const port = await freePort();
    worker = new WorkerProcess({
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      BUS: 'redis',
      PORT: String(port),
      STREAM_PREFIX: 'redis-unreachable:',
    });
    api = new HttpClient(`http://127.0.0.1:${port}`, TEST_STAFF_TOKEN);
    await eventually(
      () => api.get('/ready').catch(() => null),
      (response) => response?.status === 200,
      { timeoutMs: 20_000, description: `choreo to be ready; it printed:\n${worker.output}` },
    );
  });
  afterAll(async () => {
    await worker?.kill();
    await redis?.kill();
    await database?.drop();
  });

  it('says which server is down and which variable names it, answers at once, and stops at once', async () => {
    // given a choreo on the Redis Streams bus, when its Redis dies
    await redis.kill();

    // then /ready says Redis is down, naming REDIS_URL
    const readiness = await eventually(
      async () => readinessSchema.parse((await api.get('/ready')).body),
      (body) => body.status === 'not_ready',
      { description: '/ready to say not_ready' },
    );
    expect(readiness).toMatchObject({ bus: 'redis', postgres: 'ok' });
    expect(readiness.redis).toContain(`Redis at ${redis.url}`);
    expect(readiness.redis).toContain('REDIS_URL');
    // the dead letters, which live in Redis, are unavailable (503, naming Redis), not an internal error
    const deadLetters = await api.get('/api/dead-letters');
    expect(deadLetters.status).toBe(503);
    expect(messageSchema.parse(deadLetters.body).message).toContain('REDIS_URL');
    // the logs name Redis and its variable, and carry no stack trace
    await eventually(
      async () => worker.output,
      (output) => output.includes('REDIS_URL'),
      { description: 'a log line naming REDIS_URL' },
    );
    expect(worker.output).not.toMatch(/"stack"|MaxRetriesPerRequestError/);

    // and SIGTERM stops it cleanly (exit 0) instead of waiting for Redis until the forced exit (exit 1)
    await worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });
});
