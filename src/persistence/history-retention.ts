import { z } from 'zod';
import type { Pool, PoolClient } from './database.js';

const prunedRowSchema = z.object({ position: z.coerce.number().int() });

/**
 * How far the inbox has been pruned: every consumer group had handled every event at or below this
 * position when its rows went. Nothing may deliver an event at or below it again, since the groups no
 * longer have the records that would let them skip it; 0 before the first pruning (or migration 012).
 */
export async function readInboxPrunedThrough(db: Pool | PoolClient): Promise<number> {
  const result = await db.query('SELECT position FROM inbox_pruned');
  const row = result.rows[0];
  return row ? prunedRowSchema.parse(row).position : 0;
}
