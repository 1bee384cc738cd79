/**
 * `npm run reset`: deletes the embedded PostgreSQL's data in CHOREO_DATA_DIR (default `.choreo/`), and the
 * Redis keys of that database under STREAM_PREFIX if a Redis answers at REDIS_URL and they are its.
 * Refuses while a choreo process uses the embedded server. A PostgreSQL of your own (DATABASE_URL) is
 * never touched.
 */
import { loadConfig } from '../src/config.js';
import { resetEmbeddedData } from '../src/startup/reset.js';

const say = (line: string) => console.log(`reset: ${line}`);
try {
  const outcome = await resetEmbeddedData(loadConfig(), say);
  if (outcome === 'refused') process.exitCode = 1;
} catch (error) {
  console.error(`reset failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
