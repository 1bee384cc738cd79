import { Choreo } from './app.js';
import { loadConfig } from './config.js';
import { formatBanner } from './startup/banner.js';
import { stopWhenNpmStartEnds } from './startup/npm-parent.js';
import { type ResolvedDatabase, resolveDatabase } from './startup/resolve-database.js';
import { StartupError } from './startup/startup-error.js';

const SHUTDOWN_GRACE_MS = 15_000;

/** Start-up progress and refusals: plain lines for the person at the terminal, never a stack trace. */
function say(line: string): void {
  process.stderr.write(`choreo: ${line}\n`);
}

async function main(): Promise<void> {
  const config = loadConfig();
  // Before Choreo.create: it needs the URL of the server this process uses, the embedded one included.
  const database = await resolveDatabase(config, say);
  let choreo: Choreo;
  let address: string;
  try {
    choreo = await Choreo.create(database.config);
    await choreo.start();
    address = await choreo.listen();
  } catch (error) {
    await database.stop();
    throw error;
  }
  if (config.logLevel !== 'silent') {
    process.stdout.write(
      `${formatBanner({
        address,
        database: database.description,
        embeddedDataDir: database.embedded?.dataDir ?? null,
        bus: choreo.busKind,
        config,
        staffToken: choreo.staffToken,
      })}\n`,
    );
  }
  stopOnSignals(choreo, database);
  // A crash needs nothing here: the embedded server's watchdog stops it once this process is gone,
  // however it ends (an uncaught exception, SIGKILL, out of memory).
}

function stopOnSignals(choreo: Choreo, database: ResolvedDatabase): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    choreo.logger.info({ signal }, 'shutting down: finishing in-flight work');
    const forced = setTimeout(() => {
      choreo.logger.error('graceful shutdown timed out, exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    forced.unref();
    // The database last: choreo's in-flight work is committed (or given back) before it goes.
    choreo
      .stop()
      .then(() => database.stop())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          choreo.logger.error({ err: error }, 'error during shutdown');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  stopWhenNpmStartEnds(shutdown);
}

main().catch((error: unknown) => {
  if (error instanceof StartupError) {
    process.stderr.write(`choreo did not start:\n${error.message}\n`);
  } else {
    console.error('choreo failed to start:', error instanceof Error ? error.message : error);
  }
  process.exit(1);
});
