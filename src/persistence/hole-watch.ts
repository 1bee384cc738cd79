import type { Logger } from 'pino';
import { z } from 'zod';
import type { Pool } from './database.js';
import type { PositionGap } from './event-store.js';

export interface HoleWatchOptions {
  reader: string;
  pool: Pool;
  logger: Logger;
  /** A hole usually fills within milliseconds; waiting this long at one is worth a warning. */
  warnAfterMs?: number;
  /** While the reader still waits, the warning is repeated this often. */
  repeatEveryMs?: number;
}

const blockerRowSchema = z.object({
  pid: z.number().int(),
  application_name: z.string(),
  state: z.string().nullable(),
  open_for_seconds: z.number().nullable(),
  query: z.string().nullable(),
});
export type HoleBlocker = z.infer<typeof blockerRowSchema>;

/**
 * Tells why a reader is stuck at a hole in the positions. A reader passes a hole only once every
 * transaction that was running when it first saw it has ended, so one transaction left open (a session
 * idle in a transaction, a long batch job) stops the relay, and every saga with it. The warning names
 * those transactions, so that whoever runs choreo can end them.
 */
export class HoleWatch {
  private watched: PositionGap | null = null;
  private seenAt = 0;
  private warnedAt = 0;
  private readonly warnAfterMs: number;
  private readonly repeatEveryMs: number;

  constructor(private readonly options: HoleWatchOptions) {
    this.warnAfterMs = options.warnAfterMs ?? 5_000;
    this.repeatEveryMs = options.repeatEveryMs ?? 30_000;
  }

  /** Called after each batch with the hole the reader stopped at, if any. Never throws. */
  async observe(gap: PositionGap | null, now = Date.now()): Promise<void> {
    if (gap === null || gap.from !== this.watched?.from || gap.horizon !== this.watched.horizon) {
      this.watched = gap;
      this.seenAt = now;
      this.warnedAt = 0;
      return;
    }
    const waitingMs = now - this.seenAt;
    if (waitingMs < this.warnAfterMs || now - this.warnedAt < this.repeatEveryMs) return;
    this.warnedAt = now;
    const { reader, logger } = this.options;
    const blockers = await this.blockersOf(gap).catch((error: unknown) => {
      logger.debug({ err: error, reader }, 'could not list the transactions holding the hole');
      return [];
    });
    logger.warn(
      { reader, hole: { from: gap.from, upTo: gap.upTo }, waitingMs, blockers },
      'event store reader waiting at a hole in the positions: a transaction older than it is still open',
    );
  }

  /** The open transactions that got their id before the hole was first seen (its horizon). */
  private async blockersOf(gap: PositionGap): Promise<HoleBlocker[]> {
    // pg_stat_activity shows 32-bit xids; the horizon is a 64-bit one, of which they are the low half.
    const horizon = (gap.horizon & 0xffff_ffffn).toString();
    const result = await this.options.pool.query(
      `SELECT pid, application_name, state,
              extract(epoch FROM now() - xact_start)::float8 AS open_for_seconds,
              left(query, 200) AS query
         FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND age(backend_xid) > age($1::text::xid)
        ORDER BY xact_start`,
      [horizon],
    );
    return result.rows.map((row) => blockerRowSchema.parse(row));
  }
}
