import { describe, it } from 'vitest';
import type { BusKind } from '../../src/config.js';
import { describeNeeding } from './servers.js';

/**
 * The buses a behaviour that does not depend on the transport is tested on: the PostgreSQL bus always
 * (every run has a PostgreSQL), Redis Streams where a Redis answers (servers.ts: skipped with one line
 * otherwise, a failure with CHOREO_TEST_REQUIRE_ALL=1).
 */
export const BUSES: readonly BusKind[] = ['postgres', 'redis'];

const BUS_TITLES: Record<BusKind, string> = {
  postgres: 'on the PostgreSQL bus',
  redis: 'on the Redis Streams bus',
};

/** How a test name says which bus it ran on, e.g. "… [on the PostgreSQL bus]" (`vitest -t "PostgreSQL bus"`). */
export function busTitle(bus: BusKind): string {
  return BUS_TITLES[bus];
}

/**
 * `describe`, once per bus: the same tests, with the bus in their names. `body` starts its systems with
 * `TestSystem.start(label, { bus })`. The Redis Streams block needs a Redis (see servers.ts).
 */
export function describeOnEachBus(title: string, body: (bus: BusKind) => void): void {
  for (const bus of BUSES) describeOnBus(bus, title, () => body(bus));
}

/** `describe` for tests that only mean something on one bus (e.g. the trimming of Redis streams). */
export function describeOnBus(bus: BusKind, title: string, body: () => void): void {
  const titled = `${title} [${busTitle(bus)}]`;
  if (bus === 'redis') describeNeeding(['redis'], titled, body);
  else describe(titled, body);
}

/**
 * A test that has no meaning on some bus: skipped there, its name saying why (and run everywhere else).
 * `reasons` maps the bus that lacks it to the reason, e.g. `{ postgres: 'no XACK: …' }`.
 */
export function itUnlessOn(
  bus: BusKind,
  reasons: Partial<Record<BusKind, string>>,
  name: string,
  options: { timeout?: number },
  test: () => Promise<void>,
): void {
  const reason = reasons[bus];
  if (reason === undefined) it(name, options, test);
  else it.skip(`${name} (skipped ${busTitle(bus)}: ${reason})`, options, test);
}
