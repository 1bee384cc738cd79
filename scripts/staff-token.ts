/**
 * `npm run staff-token`: where the staff token of this database is (never the token itself).
 * `npm run staff-token -- --new`: a new one, written to `<CHOREO_DATA_DIR>/admin-token` (mode 0600) and
 * recorded as the database's; the old one stops working in every process within a few seconds.
 * Uses DATABASE_URL and CHOREO_DATA_DIR like `npm start` (the embedded server when that is what it uses).
 */
import { parseArgs } from 'node:util';
import { locateStaffToken, replaceStaffToken, STAFF_HASH_TTL_MS } from '../src/api/auth/staff-token.js';
import { loadConfig } from '../src/config.js';
import { createPool, ensureDatabaseExists } from '../src/persistence/database.js';
import { migrate } from '../src/persistence/migrate.js';
import { resolveDatabase } from '../src/startup/resolve-database.js';

const { values } = parseArgs({ options: { new: { type: 'boolean', default: false } } });
const config = loadConfig();
const say = (line: string) => process.stderr.write(`staff-token: ${line}\n`);

if (config.adminToken !== undefined) {
  console.log(
    'CHOREO_ADMIN_TOKEN is set: it is the staff token of the processes that have it, and no file is used.' +
      (values.new ? ' Change the variable to change the token.' : ''),
  );
  process.exit(values.new ? 1 : 0);
}

const database = await resolveDatabase(config, say);
const pool = createPool(database.config.databaseUrl, 2);
try {
  await ensureDatabaseExists(database.config.databaseUrl);
  await migrate(pool);
  if (values.new) {
    const path = await replaceStaffToken(pool, config.dataDir);
    console.log(`a new staff token is in ${path} (readable by this user only): TOKEN=$(cat ${path})`);
    console.log(
      `the old one stops working in every process of this database within ${STAFF_HASH_TTL_MS / 1000} s`,
    );
  } else {
    const location = await locateStaffToken(pool, config.dataDir);
    if (location.kind === 'none') {
      console.log(`no staff token yet: the first npm start writes one to ${location.path}`);
    } else if (location.kind === 'file' && location.present) {
      console.log(`the staff token is in ${location.path}: TOKEN=$(cat ${location.path})`);
    } else if (location.kind === 'file') {
      console.log(
        `the staff token of this database is not in ${location.path} (another machine generated it): ` +
          'npm run staff-token -- --new writes a new one there (the old one stops working), or set CHOREO_ADMIN_TOKEN',
      );
    }
  }
} catch (error) {
  console.error('staff-token:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await pool.end();
  await database.stop();
}
