import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { ScrapeProbe } from './scrape-probe.js';

const logger = createLogger('silent');

function probeOf<T>(read: () => Promise<T>, timeoutMs = 50): ScrapeProbe<T> {
  return new ScrapeProbe({ name: 'test', read, timeoutMs, logger });
}

describe('ScrapeProbe', () => {
  it('shares one reading between the metrics of one scrape', async () => {
    let reads = 0;
    const probe = probeOf(async () => {
      reads += 1;
      return reads;
    });

    const answers = await Promise.all([probe.sample(), probe.sample(), probe.sample()]);

    expect(answers).toEqual([1, 1, 1]);
    expect(reads).toBe(1);
    expect(await probe.sample()).toBe(2);
  });

  it('answers null instead of throwing when the dependency fails', async () => {
    const probe = probeOf(async () => {
      throw new Error('ECONNREFUSED');
    });

    expect(await probe.sample()).toBeNull();
  });

  it('gives up on a reading that does not answer, and does not start a second one meanwhile', async () => {
    let reads = 0;
    let release: (value: string) => void = () => {};
    const probe = probeOf(() => {
      reads += 1;
      if (reads > 1) return Promise.resolve('fresh');
      return new Promise<string>((resolve) => {
        release = resolve;
      });
    });

    expect(await probe.sample()).toBeNull();
    expect(await probe.sample()).toBeNull();
    expect(reads).toBe(1);

    release('late');
    expect(['late', 'fresh']).toContain(await probe.sample());
    expect(await probe.sample()).toBe('fresh');
  });
});
