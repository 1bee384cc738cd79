import type { BusKind } from '../config.js';
import type { Bus } from './bus.js';
import type { BusDependencies } from './bus-dependencies.js';
import { PostgresBus } from './postgres/postgres-bus.js';
import { RedisStreamsBus, type RedisStreamsBusOptions } from './redis-streams/redis-streams-bus.js';

export type RedisSettings = Omit<RedisStreamsBusOptions, keyof BusDependencies>;

/** The one place that picks the adapter; everything else sees the port. */
export function createBus(kind: BusKind, dependencies: BusDependencies, redis: RedisSettings): Bus {
  switch (kind) {
    case 'redis':
      return new RedisStreamsBus({ ...dependencies, ...redis });
    case 'postgres':
      return new PostgresBus(dependencies);
    default: {
      const unknown: never = kind;
      throw new Error(`unknown bus ${String(unknown)}`);
    }
  }
}
