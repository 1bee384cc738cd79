import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXPLICIT_DATABASE_ATTEMPTS } from '../src/startup/resolve-database.js';
import { freePort } from './support/free-port.js';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs choreo to its end and returns its exit code and everything it printed. */
function runChoreo(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

describe('a PostgreSQL set in DATABASE_URL that does not answer', () => {
  it('is retried a few times with a line each, then choreo exits 1 saying what to do, never falling back to the embedded one', async () => {
    // given a DATABASE_URL (with a password) where nothing listens
    const port = await freePort();

    // when choreo starts
    const started = Date.now();
    const { code, output } = await runChoreo({
      DATABASE_URL: `postgres://postgres:s3cret@127.0.0.1:${port}/choreo`,
    });

    // then it names the server, the variable and the way out, with no stack trace and no password
    expect(code, output).toBe(1);
    const where = `PostgreSQL at postgres://postgres:***@127.0.0.1:${port}/choreo (DATABASE_URL) does not answer: connect ECONNREFUSED`;
    expect(output).toContain(where);
    for (let attempt = 1; attempt < EXPLICIT_DATABASE_ATTEMPTS; attempt++) {
      expect(output).toContain(`attempt ${attempt} of ${EXPLICIT_DATABASE_ATTEMPTS}`);
    }
    expect(output).toContain(
      'Start it, fix DATABASE_URL, or unset DATABASE_URL to use the embedded PostgreSQL.',
    );
    expect(output).not.toContain('s3cret');
    expect(output).not.toMatch(/^\s+at /m);
    expect(output).not.toContain('embedded PostgreSQL 18');
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);
});
