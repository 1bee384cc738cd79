import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
    // A PostgreSQL for the run (the machine's, or an embedded one), and which optional servers there are.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each get their own database and Redis key prefix, so they can run side by side.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
