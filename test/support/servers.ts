import { describe, it } from 'vitest';

/**
 * The servers a test file may need beyond PostgreSQL (which the run always has: global-setup.ts starts
 * an embedded one when none answers). global-setup.ts probes each once per run and tells the workers
 * through these variables.
 */
export type OptionalServer = 'redis' | 'prometheus';

export const SERVER_STATE_VARIABLES: Record<OptionalServer, string> = {
  redis: 'CHOREO_TEST_REDIS',
  prometheus: 'CHOREO_TEST_PROMETHEUS',
};

/** What to tell a person who lacks the server, where to get it. */
export function serverNeed(server: OptionalServer): string {
  switch (server) {
    case 'redis':
      return `Redis at ${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'} (REDIS_URL)`;
    case 'prometheus':
      return `Prometheus ("${process.env.PROMETHEUS_BIN ?? 'prometheus'}" on the PATH or PROMETHEUS_BIN; apt-get install prometheus)`;
  }
}

/** Whether the run found the server. A file run without the global setup assumes it is there. */
export function serverAvailable(server: OptionalServer): boolean {
  return process.env[SERVER_STATE_VARIABLES[server]] !== 'down';
}

/** CI sets it: there, a missing server is a failure, never a skip. */
export function everyServerRequired(): boolean {
  return process.env.CHOREO_TEST_REQUIRE_ALL === '1';
}

/**
 * `describe`, for tests that need `servers`. When one is missing, the tests are skipped and one line
 * says what they need; with CHOREO_TEST_REQUIRE_ALL=1 (CI), the block fails instead, saying the same.
 */
export function describeNeeding(servers: OptionalServer[], title: string, body: () => void): void {
  const missing = servers.filter((server) => !serverAvailable(server));
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  const needs = `needs ${missing.map(serverNeed).join(' and ')}`;
  if (everyServerRequired()) {
    describe(title, () => {
      it(`has the servers it ${needs.replace(/^needs/, 'needs:')}`, () => {
        throw new Error(`${title}: ${needs}, and CHOREO_TEST_REQUIRE_ALL=1 makes a missing server a failure`);
      });
    });
    return;
  }
  console.warn(`skipped: ${needs} — ${title}`);
  describe.skip(`${title} (skipped: ${needs})`, body);
}
