/**
 * The vitest configuration mutation testing runs under (stryker.config.mjs): the project's own
 * (vitest.config.ts: its global setup, its timeouts), limited to the tests of the group being run.
 *
 * Limited here rather than with Stryker's `testFiles` option: given that option, Stryker activates a static
 * mutant (one in code that runs when its module loads, e.g. the order machine's definition or an SQL
 * statement) only once the modules are loaded, so it never takes effect and every static mutant survives.
 *
 * MUTATION_TEST_FILES (comma-separated globs) runs other tests than the group's: to see quickly what the
 * tests of one module kill, e.g. `MUTATION_GROUP=actors-saga MUTATION_TEST_FILES=src/actors/commande/*.spec.ts
 * npx stryker run stryker.config.mjs --mutate src/actors/commande/saga-actor.ts --force --incrementalFile /tmp/one-module.json`.
 */
import { defineConfig } from 'vitest/config';
import { mutationGroup } from './stryker.config.mjs';
import base from './vitest.config.js';

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: process.env.MUTATION_TEST_FILES?.split(',') ?? mutationGroup().testFiles,
  },
});
