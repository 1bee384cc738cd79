import type pg from 'pg';

const EVERY_MS = 15_000;

export interface VacuumStandIn {
  /** Why it runs, for the bench's output; null when the server's own autovacuum does the work. */
  readonly reason: string | null;
  stop(): Promise<void>;
}

/**
 * Does what autovacuum would on a server that runs without it (this machine's CI configuration): with
 * nothing ever analyzed, PostgreSQL plans on no statistics and scans whole tables that grew since (the
 * checkouts of a 100,000-order soak read 4.7 billion cart rows), and the bench measured that, not choreo.
 * Every 15 s, one `VACUUM (ANALYZE)` of the bench's database; its CPU counts as PostgreSQL's.
 */
export async function startVacuumStandIn(pool: pg.Pool, database: string): Promise<VacuumStandIn> {
  const setting = await pool.query<{ autovacuum: string }>('SHOW autovacuum');
  if (setting.rows[0]?.autovacuum !== 'off') return { reason: null, stop: async () => {} };
  let running = true;
  let wake: (() => void) | null = null;
  const loop = (async () => {
    while (running) {
      await pool.query('VACUUM (ANALYZE)').catch(() => {});
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, EVERY_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    reason: `autovacuum is off on this server: the bench runs VACUUM (ANALYZE) on ${database} every ${EVERY_MS / 1_000} s in its place`,
    stop: async () => {
      running = false;
      wake?.();
      await loop;
    },
  };
}
