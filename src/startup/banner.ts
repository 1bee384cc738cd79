import type { StaffTokenLocation } from '../api/auth/staff-token.js';
import type { BusKind, Config } from '../config.js';
import { redactUrl } from '../observability/server-url.js';

export interface BannerFacts {
  /** What fastify answered to listen(), e.g. `http://0.0.0.0:3000`. */
  address: string;
  database: string;
  /** The embedded server's data directory, when this process uses it. */
  embeddedDataDir: string | null;
  bus: BusKind;
  config: Pick<Config, 'redisUrl' | 'streamPrefix'>;
  /** Where the staff token is: the banner says where, never what it is. */
  staffToken: StaffTokenLocation;
}

/** Where a person finds the staff token, or how to get one. */
function staffTokenLine(location: StaffTokenLocation): string {
  if (location.kind === 'environment') return 'CHOREO_ADMIN_TOKEN (as set in the environment)';
  if (location.present) {
    return `${location.path}${location.generated ? ' (generated now)' : ''}: TOKEN=$(cat ${location.path})`;
  }
  return `not in ${location.path}: another machine of this database generated it. npm run staff-token -- --new writes a new one there (the old one stops working), or set CHOREO_ADMIN_TOKEN`;
}

/** The few lines that tell a person what this process runs on, and how to change it. */
export function formatBanner(facts: BannerFacts): string {
  const api = browsableAddress(facts.address);
  const bus =
    facts.bus === 'redis'
      ? `Redis Streams at ${redactUrl(facts.config.redisUrl)}, STREAM_PREFIX=${JSON.stringify(facts.config.streamPrefix)}`
      : 'the PostgreSQL bus (consumers read the event store itself; no Redis needed)';
  return [
    `choreo is ready: ${api} (API docs at ${api}/docs)`,
    `  database  ${facts.database}`,
    `  bus       ${bus}`,
    facts.embeddedDataDir
      ? `  data      ${facts.embeddedDataDir} (npm run reset deletes it, with its Redis binding)`
      : '  data      in that PostgreSQL (npm run reset only resets the embedded one)',
    `  staff     token in ${staffTokenLine(facts.staffToken)}; send Authorization: Bearer $TOKEN`,
    '  switch    DATABASE_URL=postgres://… for your own PostgreSQL; REDIS_URL=redis://… or BUS=redis|postgres for the bus',
    `  stop      Ctrl-C, or kill ${process.pid}`,
  ].join('\n');
}

/** A wildcard listen address is not a URL a browser opens: show localhost instead. */
function browsableAddress(address: string): string {
  try {
    const url = new URL(address);
    if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = 'localhost';
    return url.origin;
  } catch {
    return address;
  }
}
