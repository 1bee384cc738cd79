import type { Logger } from 'pino';

/**
 * A failure that repeats while a dependency is away (a loop retrying every few seconds): said once when
 * it starts, with its message and not a stack trace, reminded every minute, and said again when it ends.
 */
export class RepeatedFailure {
  private since: number | null = null;
  private remindedAt = 0;
  private count = 0;

  constructor(
    private readonly logger: Logger,
    /** What fails, e.g. "the outbox relay". */
    private readonly what: string,
    private readonly remindEveryMs = 60_000,
  ) {}

  get failing(): boolean {
    return this.since !== null;
  }

  failed(error: unknown, context: Record<string, unknown> = {}): void {
    const now = Date.now();
    const message = error instanceof Error ? error.message : String(error);
    this.count += 1;
    if (this.since === null) {
      this.since = now;
      this.remindedAt = now;
      this.count = 1;
      this.logger.error(context, `${this.what} failed: ${message}; retrying`);
    } else if (now - this.remindedAt >= this.remindEveryMs) {
      this.remindedAt = now;
      const seconds = Math.round((now - this.since) / 1_000);
      this.logger.error(
        context,
        `${this.what} still failing after ${seconds} s (${this.count} tries): ${message}`,
      );
    }
  }

  succeeded(context: Record<string, unknown> = {}): void {
    if (this.since === null) return;
    const seconds = Math.round((Date.now() - this.since) / 1_000);
    this.since = null;
    this.logger.info(context, `${this.what} works again, after ${seconds} s`);
  }
}
