/**
 * Once per `vitest run`, before any worker starts: makes sure the tests have a PostgreSQL, and finds out
 * which optional servers (Redis, Prometheus) this machine has. Workers inherit what it sets in
 * process.env: TEST_DATABASE_ADMIN_URL, and the CHOREO_TEST_* variables that servers.ts reads.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactUrl } from '../../src/observability/server-url.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/startup/embedded-postgres.js';
import { probePostgres, probeRedis } from '../../src/startup/probe.js';
import { freePort } from './free-port.js';
import { SERVER_STATE_VARIABLES, serverNeed } from './servers.js';
import { DEFAULT_TEST_DATABASE_ADMIN_URL } from './test-database.js';

/** The test files' databases are thrown away: durability is not what they test. */
const TEST_SERVER_SETTINGS = {
  max_connections: '300',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
};

export default async function setup(): Promise<() => Promise<void>> {
  const embedded = await ensurePostgres();
  const redisUp =
    (await probeRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 1_000)).outcome === 'answers';
  process.env[SERVER_STATE_VARIABLES.redis] = redisUp ? 'up' : 'down';
  const prometheus = spawnSync(process.env.PROMETHEUS_BIN ?? 'prometheus', ['--version'], {
    stdio: 'ignore',
  });
  const prometheusUp = prometheus.error === undefined && prometheus.status === 0;
  process.env[SERVER_STATE_VARIABLES.prometheus] = prometheusUp ? 'up' : 'down';
  const missing = [...(redisUp ? [] : ['redis' as const]), ...(prometheusUp ? [] : ['prometheus' as const])];
  if (missing.length > 0) {
    const consequence =
      process.env.CHOREO_TEST_REQUIRE_ALL === '1'
        ? 'the tests that need it fail (CHOREO_TEST_REQUIRE_ALL=1)'
        : 'the tests that need it are skipped';
    for (const server of missing) console.warn(`test run: no ${serverNeed(server)}: ${consequence}`);
  }

  return async () => {
    if (!embedded) return;
    await embedded.server.stop();
    await rm(embedded.directory, { recursive: true, force: true });
  };
}

/**
 * The machine's PostgreSQL when one answers at TEST_DATABASE_ADMIN_URL (or its default); otherwise, when
 * that variable is unset, one embedded server for the whole run, on a free port, in a throw-away folder.
 */
async function ensurePostgres(): Promise<{ server: EmbeddedPostgres; directory: string } | null> {
  const explicit = process.env.TEST_DATABASE_ADMIN_URL;
  const adminUrl = explicit ?? DEFAULT_TEST_DATABASE_ADMIN_URL;
  const probe = await probePostgres(adminUrl, 1_000);
  if (probe.outcome === 'answers') return null;
  if (explicit !== undefined) {
    throw new Error(
      `PostgreSQL at ${redactUrl(adminUrl)} (TEST_DATABASE_ADMIN_URL) ${probe.outcome === 'refuses' ? 'refuses' : 'does not answer'}: ` +
        `${probe.reason}. Start it, fix TEST_DATABASE_ADMIN_URL, or unset it to test on an embedded PostgreSQL.`,
    );
  }
  const directory = await mkdtemp(join(tmpdir(), 'choreo-test-postgres-'));
  // As root the server runs as the user postgres, which must be able to enter the folder.
  await chmod(directory, 0o755);
  const server = await startEmbeddedPostgres({
    dataDir: join(directory, 'postgres'),
    port: await freePort(),
    settings: TEST_SERVER_SETTINGS,
  });
  process.env.TEST_DATABASE_ADMIN_URL = server.url;
  console.warn(
    `test run: no PostgreSQL at ${redactUrl(adminUrl)}: the tests use an embedded PostgreSQL on port ${server.port}`,
  );
  return { server, directory };
}
