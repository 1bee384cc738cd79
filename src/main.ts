import { Choreo } from './app.js';
import { loadConfig } from './config.js';

const SHUTDOWN_GRACE_MS = 15_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const choreo = await Choreo.create(config);
  await choreo.start();
  const address = await choreo.listen();
  choreo.logger.info(`choreo listening on ${address} (API docs at ${address}/docs)`);

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
    choreo.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        choreo.logger.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error('choreo failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
