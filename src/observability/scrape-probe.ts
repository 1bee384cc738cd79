import type { Logger } from 'pino';

export interface ScrapeProbeOptions<T> {
  /** Names the reading in logs and in the `scrape_collector_up` metric. */
  name: string;
  read: () => Promise<T>;
  /** Gives up after this long; keep it well under Prometheus's scrape_timeout. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * A reading of PostgreSQL or Redis taken while /metrics is being scraped. It is bounded and never
 * throws: a dependency that is down or slow answers `null` after `timeoutMs`, and the rest of the scrape
 * goes on. Single-flight: the metrics collected in one scrape share one reading, and a reading still
 * stuck on a dead connection is waited on again by the next scrape instead of being started twice.
 */
export class ScrapeProbe<T> {
  private inFlight: Promise<T> | null = null;
  private healthy = true;

  constructor(private readonly options: ScrapeProbeOptions<T>) {}

  get name(): string {
    return this.options.name;
  }

  async sample(): Promise<T | null> {
    const reading = this.inFlight ?? this.startReading();
    try {
      const value = await withTimeout(reading, this.options.timeoutMs, this.options.name);
      this.noteHealth(true);
      return value;
    } catch (error) {
      this.noteHealth(false, error);
      return null;
    }
  }

  private startReading(): Promise<T> {
    const reading = Promise.resolve().then(this.options.read);
    this.inFlight = reading;
    const settle = (): void => {
      if (this.inFlight === reading) this.inFlight = null;
    };
    reading.then(settle, settle);
    return reading;
  }

  /** Logs when a reading starts or stops failing, not on every scrape. */
  private noteHealth(healthy: boolean, error?: unknown): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    if (healthy) this.options.logger.info({ collector: this.name }, 'metrics collector recovered');
    else this.options.logger.warn({ collector: this.name, err: error }, 'metrics collector failing');
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
