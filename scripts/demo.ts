/**
 * `npm run demo -- [--rate 20] [--seconds 30] [--url http://localhost:3000]`: the explorer's demo load
 * from a terminal. The running choreo seeds its demo shop if there is none and sends the checkouts
 * (POST /api/demo); this prints their progress until the run ends. Watch them at <url>/explorer.
 * It calls as staff: CHOREO_ADMIN_TOKEN, or the token `npm start` wrote to <CHOREO_DATA_DIR>/admin-token.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { adminTokenPath } from '../src/api/auth/staff-token.js';
import { loadConfig } from '../src/config.js';

const progressSchema = z.object({
  state: z.string(),
  planned: z.number(),
  sent: z.object({ succes: z.number(), stock_insuffisant: z.number(), solde_insuffisant: z.number() }),
  skipped: z.number(),
  errors: z.number(),
  seeded: z.boolean(),
  last_error: z.string().nullable(),
});
const argsSchema = z.object({
  rate: z.coerce.number().min(0.5).max(200),
  seconds: z.coerce.number().int().min(1).max(600),
  url: z.url(),
});

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    url: { type: 'string', default: `http://localhost:${process.env.PORT ?? 3000}` },
  },
});
const args = argsSchema.parse(values);

/** The staff token: the variable, else the file the first `npm start` wrote; a clear error without either. */
function staffToken(): string {
  const config = loadConfig();
  if (config.adminToken !== undefined) return config.adminToken;
  const path = adminTokenPath(config.dataDir);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    throw new Error(
      `no staff token: CHOREO_ADMIN_TOKEN is unset and ${path} cannot be read (start choreo once with npm start, which writes it, or set CHOREO_ADMIN_TOKEN, or CHOREO_DATA_DIR to the folder that holds it)`,
    );
  }
}

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const authorization = `Bearer ${staffToken()}`;
  const response = await fetch(`${args.url}${path}`, {
    method,
    ...(body === undefined
      ? { headers: { authorization } }
      : { headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const json: unknown = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}: ${JSON.stringify(json)}`);
  return progressSchema.parse(json);
}

function line(progress: z.infer<typeof progressSchema>): string {
  const { succes, stock_insuffisant, solde_insuffisant } = progress.sent;
  const sent = succes + stock_insuffisant + solde_insuffisant;
  return `${progress.state}: ${sent}/${progress.planned} checkouts sent (succeeding ${succes}, no stock ${stock_insuffisant}, cannot pay ${solde_insuffisant}; skipped ${progress.skipped}, errors ${progress.errors})`;
}

try {
  let progress = await call('POST', '/api/demo', { rate: args.rate, seconds: args.seconds });
  console.log(
    `demo load: ${args.rate}/s for ${args.seconds} s on ${args.url}${progress.seeded ? ' (demo shop seeded)' : ''}`,
  );
  console.log(`watch it: ${args.url}/explorer`);
  while (progress.state === 'running' || progress.state === 'seeding') {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    progress = await call('GET', '/api/demo');
    console.log(line(progress));
  }
  if (progress.state === 'failed') throw new Error(progress.last_error ?? 'the demo load failed');
} catch (error) {
  console.error('demo:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
