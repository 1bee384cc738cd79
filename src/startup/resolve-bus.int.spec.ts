import { describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/free-port.js';
import { describeNeeding } from '../../test/support/servers.js';
import { startupErrorOf } from '../../test/support/startup-error-of.js';
import { resolveBus } from './resolve-bus.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A Redis URL where nothing listens. */
async function silentRedisUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

describe('resolveBus without a Redis', () => {
  it('BUS=postgres is the PostgreSQL bus, without asking Redis', async () => {
    expect(await resolveBus({ bus: 'postgres', redisUrl: await silentRedisUrl(), redisUrlSet: true })).toBe(
      'postgres',
    );
  });

  it('BUS=auto with REDIS_URL unset and no Redis at the default address is the PostgreSQL bus, within a second', async () => {
    const started = Date.now();
    expect(await resolveBus({ bus: 'auto', redisUrl: await silentRedisUrl(), redisUrlSet: false })).toBe(
      'postgres',
    );
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('BUS=redis with no Redis refuses to start, naming Redis, REDIS_URL and BUS', async () => {
    const url = await silentRedisUrl();
    const error = await startupErrorOf(resolveBus({ bus: 'redis', redisUrl: url, redisUrlSet: false }));
    expect(error.message).toContain(`Redis at ${url}`);
    expect(error.message).toContain('(REDIS_URL) does not answer');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('BUS=redis');
    expect(error.message).toContain('BUS=postgres');
  });

  it('BUS=auto with REDIS_URL set and no Redis there refuses to start: no silent fallback', async () => {
    const url = await silentRedisUrl();
    const error = await startupErrorOf(resolveBus({ bus: 'auto', redisUrl: url, redisUrlSet: true }));
    expect(error.message).toContain('REDIS_URL is set, so BUS=auto needs it');
  });

  it('hides the password of a Redis URL', async () => {
    const url = `redis://:s3cret@127.0.0.1:${await freePort()}`;
    const error = await startupErrorOf(resolveBus({ bus: 'redis', redisUrl: url, redisUrlSet: true }));
    expect(error.message).not.toContain('s3cret');
    expect(error.message).toContain('redis://:***@127.0.0.1');
  });
});

describeNeeding(['redis'], 'resolveBus with a Redis', () => {
  it('BUS=auto is Redis when one answers at the default address', async () => {
    expect(await resolveBus({ bus: 'auto', redisUrl: REDIS_URL, redisUrlSet: false })).toBe('redis');
  });

  it('BUS=redis is Redis when REDIS_URL answers', async () => {
    expect(await resolveBus({ bus: 'redis', redisUrl: REDIS_URL, redisUrlSet: true })).toBe('redis');
  });
});
