import { join } from 'node:path';
import type { Config } from '../config.js';
import { redactUrl } from '../observability/server-url.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.js';
import { probePostgres } from './probe.js';
import { StartupError } from './startup-error.js';
import { CHOREO_APPLICATION_NAME } from './watchdog-protocol.js';

/** Quick: on a bare machine nothing answers, and the embedded server should start without delay. */
const DEFAULT_ADDRESS_PROBE_MS = 1_000;
/** An explicitly configured server gets a few chances (it may be starting beside us, e.g. in compose). */
export const EXPLICIT_DATABASE_ATTEMPTS = 5;
const EXPLICIT_DATABASE_RETRY_MS = 2_000;
const EXPLICIT_DATABASE_PROBE_MS = 3_000;
const EMBEDDED_DATABASE = 'choreo';

export interface ResolvedDatabase {
  /** The configuration with `databaseUrl` naming the server this process uses. */
  config: Config;
  /** For the banner: which PostgreSQL, and where its data is. */
  description: string;
  /** The embedded server, when this process uses it. */
  embedded: EmbeddedPostgres | null;
  /** Stops the embedded server if this process started it (a no-op otherwise). */
  stop: () => Promise<void>;
}

/** The embedded server's data directory under CHOREO_DATA_DIR. */
export function embeddedPostgresDir(config: Pick<Config, 'dataDir'>): string {
  return join(config.dataDir, 'postgres');
}

/**
 * Which PostgreSQL this process uses. DATABASE_URL set: that one, which must answer (a few attempts, one
 * line each), never the embedded one instead. Unset: the default address if a PostgreSQL answers there,
 * otherwise the embedded server (DATABASE_URL=embedded: the embedded server in any case).
 */
export async function resolveDatabase(
  config: Config,
  say: (line: string) => void,
): Promise<ResolvedDatabase> {
  if (config.databaseUrlSet) {
    await waitForExplicitDatabase(config.databaseUrl, say);
    return {
      config,
      description: `PostgreSQL at ${redactUrl(config.databaseUrl)} (DATABASE_URL)`,
      embedded: null,
      stop: async () => {},
    };
  }

  if (!config.forceEmbeddedPostgres) {
    const probe = await probePostgres(config.databaseUrl, DEFAULT_ADDRESS_PROBE_MS);
    if (probe.outcome === 'answers') {
      return {
        config,
        description: `PostgreSQL at ${redactUrl(config.databaseUrl)} (the default address: one answers there)`,
        embedded: null,
        stop: async () => {},
      };
    }
    if (probe.outcome === 'refuses') {
      say(
        `a PostgreSQL answers at ${redactUrl(config.databaseUrl)} but refuses choreo (${probe.reason}): ` +
          'using the embedded PostgreSQL instead (set DATABASE_URL to use that server)',
      );
    }
  }

  const embedded = await startEmbeddedPostgres({
    dataDir: embeddedPostgresDir(config),
    port: config.embeddedPostgresPort,
    say,
  });
  return {
    config: { ...config, databaseUrl: embeddedDatabaseUrl(embedded) },
    description:
      `embedded PostgreSQL 18 on 127.0.0.1:${embedded.port}, data in ${embedded.dataDir}` +
      (embedded.shared ? ' (started by another choreo process, which stops it)' : ''),
    embedded,
    stop: () => embedded.stop(),
  };
}

/**
 * The `choreo` database of the embedded server. The application name lets the server's watchdog tell
 * choreo processes from other clients when it waits for the ones still using the server.
 */
export function embeddedDatabaseUrl(embedded: Pick<EmbeddedPostgres, 'url'>): string {
  const url = new URL(embedded.url);
  url.pathname = `/${EMBEDDED_DATABASE}`;
  url.searchParams.set('application_name', CHOREO_APPLICATION_NAME);
  return url.toString();
}

async function waitForExplicitDatabase(url: string, say: (line: string) => void): Promise<void> {
  const where = `PostgreSQL at ${redactUrl(url)} (DATABASE_URL)`;
  for (let attempt = 1; ; attempt++) {
    const probe = await probePostgres(url, EXPLICIT_DATABASE_PROBE_MS);
    if (probe.outcome === 'answers') return;
    if (probe.outcome === 'refuses') {
      throw new StartupError(
        `${where} refuses choreo: ${probe.reason}. Fix DATABASE_URL (user, password, database), ` +
          'or unset DATABASE_URL to use the embedded PostgreSQL.',
      );
    }
    if (attempt === EXPLICIT_DATABASE_ATTEMPTS) {
      throw new StartupError(
        `${where} does not answer: ${probe.reason} (${attempt} attempts). Start it, fix DATABASE_URL, ` +
          'or unset DATABASE_URL to use the embedded PostgreSQL.',
      );
    }
    say(
      `${where} does not answer: ${probe.reason}; attempt ${attempt} of ${EXPLICIT_DATABASE_ATTEMPTS}, ` +
        `trying again in ${EXPLICIT_DATABASE_RETRY_MS / 1000} s`,
    );
    await new Promise((resolve) => setTimeout(resolve, EXPLICIT_DATABASE_RETRY_MS));
  }
}
