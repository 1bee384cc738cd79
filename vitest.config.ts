import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each get their own database and Redis key prefix, so they can run side by side.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
