import { z } from 'zod';
import { type Pool, withTransaction } from './database.js';

const countRowSchema = z.object({ statut: z.string(), commandes: z.coerce.number().int() });

/**
 * Counts the sagas in each state again from the sagas themselves, as migration 008 first did. The saga
 * actors keep `saga_counts` in the statement that writes their rows; a process running code older than
 * that migration (during a rolling upgrade) writes rows without counting them, and this puts the counts
 * right once every process runs the new code. Saga writers wait while it counts.
 */
export async function recountSagas(pool: Pool): Promise<Record<string, number>> {
  return withTransaction(pool, async (tx) => {
    await tx.query('LOCK TABLE sagas IN SHARE MODE');
    await tx.query('DELETE FROM saga_counts');
    const counted = await tx.query(
      `INSERT INTO saga_counts (statut, commandes) SELECT statut, count(*) FROM sagas GROUP BY statut
       RETURNING statut, commandes`,
    );
    const counts = counted.rows.map((row) => countRowSchema.parse(row));
    counts.sort((a, b) => a.statut.localeCompare(b.statut));
    return Object.fromEntries(counts.map(({ statut, commandes }) => [statut, commandes]));
  });
}
