/**
 * `npm run recount-sagas`: counts the sagas in each state again (the `commandes_par_etat` gauge), after
 * processes older than the saga counts wrote sagas without counting them. Uses DATABASE_URL like choreo.
 */
import { loadConfig } from '../src/config.js';
import { createPool } from '../src/persistence/database.js';
import { migrate } from '../src/persistence/migrate.js';
import { recountSagas } from '../src/persistence/saga-counts.js';

const config = loadConfig();
const pool = createPool(config.databaseUrl, 2);
try {
  await migrate(pool);
  const counts = await recountSagas(pool);
  const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
  console.log(`recounted ${total} sagas:`);
  for (const [statut, commandes] of Object.entries(counts)) console.log(`  ${statut}: ${commandes}`);
} catch (error) {
  console.error('recount failed:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await pool.end();
}
