// @ts-check
/**
 * Mutation testing (StrykerJS, vitest runner): `npm run mutation` (scripts/mutation.ts) runs each group
 * below in turn; `npm run mutation -- machines` runs one. What each group mutates, which tests it runs
 * and why is in docs/testing.md, with the last scores.
 *
 * Each group has its own incremental file, tracked in git: a later run tests again only the mutants whose
 * code or covering tests changed.
 */

/** @type {Record<string, { mutate: string[]; testFiles: string[]; ignoreStatic: boolean }>} */
const GROUPS = {
  // The order machine, its replay and the diagrams drawn from it, against their unit tests (fast: every
  // mutant, static ones included, i.e. the machine definition itself, runs its tests).
  machines: {
    mutate: ['src/machines/**/*.ts', '!src/machines/**/*.spec.ts'],
    testFiles: ['src/machines/**/*.spec.ts'],
    ignoreStatic: false,
  },
  // The event store's append and read paths, against the integration tests on a real PostgreSQL that
  // exercise them.
  'event-store': {
    mutate: ['src/persistence/event-store.ts'],
    testFiles: [
      'src/persistence/event-store.int.spec.ts',
      'src/persistence/read-all-gap-safe.int.spec.ts',
      'src/persistence/checkpointed-reader.int.spec.ts',
      'src/persistence/statement-pipeline.int.spec.ts',
    ],
    ignoreStatic: false,
  },
  // The actors are tested at two levels: integration tests beside each module, which call it on a real
  // PostgreSQL (milliseconds a test), and end-to-end tests, which start a real choreo on PostgreSQL (and
  // Redis for the redelivery test), a few seconds a mutant. Each actor group runs only the tests that call
  // its actors by name, and a static mutant (code run only while a system starts, outside any test) is left out and
  // counted as "ignored" rather than run against every test. The repositories behind the catalogue, cart
  // and client routes, and the metrics wiring (actor-host.ts), are tested through the HTTP API, not here.
  //
  // The saga and what every service shares: the saga actor and its deadlines, the inbox (exactly once)
  // and its pruning (and the timer that runs it), the commande cache, and the checkout batcher.
  'actors-saga': {
    mutate: [
      'src/actors/service-actor.ts',
      'src/actors/commande/saga-actor.ts',
      'src/actors/commande/deadline-scheduler.ts',
      'src/actors/commande/commande-cache.ts',
      'src/actors/panier/checkout-batcher.ts',
      'src/actors/history-retention.ts',
      'src/persistence/history-retention.ts',
    ],
    testFiles: [
      'src/actors/**/*.spec.ts',
      'src/persistence/history-retention.int.spec.ts',
      'test/saga-batch.e2e.spec.ts',
      'test/commande-cache.e2e.spec.ts',
      'test/redelivery.e2e.spec.ts',
      'test/checkout-together.e2e.spec.ts',
      'test/bounded-memory.e2e.spec.ts',
      'test/saga-catch-up.e2e.spec.ts',
      'test/checkout-batch-and-inbox.e2e.spec.ts',
    ],
    ignoreStatic: true,
  },
  // The services' decisions: the stock reserved or refused, the payment debited or refused, the sale, and
  // the commande's stream they read and append to.
  'actors-services': {
    mutate: [
      'src/actors/commande/commande-stream.ts',
      'src/actors/stock/stock-actor.ts',
      'src/actors/client/client-actor.ts',
      'src/actors/ventes/ventes-actor.ts',
    ],
    testFiles: [
      'src/actors/commande/commande-stream.int.spec.ts',
      'src/actors/stock/stock-actor.int.spec.ts',
      'src/actors/client/client-actor.int.spec.ts',
      'src/actors/ventes/ventes-actor.int.spec.ts',
      'test/service-batches.e2e.spec.ts',
      'test/commande-cache.e2e.spec.ts',
      'test/redelivery.e2e.spec.ts',
    ],
    ignoreStatic: true,
  },
};

/** The group named by MUTATION_GROUP (stryker.vitest.config.ts runs its tests). */
export function mutationGroup() {
  const name = process.env.MUTATION_GROUP ?? 'machines';
  const group = GROUPS[name];
  if (group === undefined) {
    throw new Error(`MUTATION_GROUP=${name}: no such group (one of ${Object.keys(GROUPS).join(', ')})`);
  }
  return { name, ...group };
}

const group = mutationGroup();
const groupName = group.name;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // The project's config (its global setup: a PostgreSQL, which servers there are; its timeouts), with the
  // group's tests only. Not Stryker's `testFiles`, which leaves static mutants untested (see that file).
  vitest: { configFile: 'stryker.vitest.config.ts' },
  coverageAnalysis: 'perTest',
  mutate: group.mutate,
  ignoreStatic: group.ignoreStatic,
  // The machine has two cores, shared: one test runner by default (`--concurrency 2` for a quiet machine).
  concurrency: 1,
  // A mutant counts as a timeout only well past its tests' usual time, and past the 15 s a test waits for
  // a condition (test/support/eventually.ts): a system that never gets there fails its test instead.
  timeoutFactor: 2,
  timeoutMS: 30_000,
  dryRunTimeoutMinutes: 30,
  incremental: true,
  incrementalFile: `reports/mutation/${groupName}.incremental.json`,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${groupName}.html` },
  jsonReporter: { fileName: `reports/mutation/${groupName}.json` },
  clearTextReporter: { allowColor: false, logTests: false },
  thresholds: { high: 90, low: 80, break: null },
};
