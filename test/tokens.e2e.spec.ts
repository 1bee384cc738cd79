import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ADMIN_TOKEN_FILE,
  locateStaffToken,
  replaceStaffToken,
  STAFF_HASH_TTL_MS,
  setUpStaffToken,
} from '../src/api/auth/staff-token.js';
import { newStaffToken } from '../src/api/auth/tokens.js';
import { Choreo } from '../src/app.js';
import type { Config } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { createPool } from '../src/persistence/database.js';
import { migrate } from '../src/persistence/migrate.js';
import { capturingLogger } from './support/capturing-logger.js';
import { eventually } from './support/eventually.js';
import { HttpClient } from './support/http-client.js';
import { Shop } from './support/shop.js';
import { createTestDatabase } from './support/test-database.js';
import { TestSystem, testConfig } from './support/test-system.js';

/**
 * Issue 19, point 1: tokens are stored as hashes only, a new one stops the old one in every process, the
 * generated staff token is readable by its user only, and no token ever reaches a log line.
 */

const createdClient = z.object({ id: z.number(), token: z.string() });
const tokenAnswer = z.object({ client_id: z.number(), token: z.string() });

/** Another process of the same database (its own HTTP listener), as a second machine would run it. */
async function secondProcess(
  system: TestSystem,
  config: Partial<Config> = {},
): Promise<{ choreo: Choreo; api: HttpClient }> {
  const choreo = await Choreo.create(
    { ...testConfig(system.database.url, system.streamPrefix, ['projections']), bus: system.bus, ...config },
    { logger: createLogger('silent'), processMetrics: false },
  );
  await choreo.start();
  return { choreo, api: new HttpClient(await choreo.listen(), config.adminToken ?? system.api.token) };
}

/** Every text the database holds in these tables, to look for a token in clear. */
async function databaseText(system: TestSystem): Promise<string> {
  const { rows } = await system.choreo.pool.query(
    `SELECT (SELECT coalesce(string_agg(t::text, '|'), '') FROM client_tokens t) ||
            (SELECT coalesce(string_agg(t::text, '|'), '') FROM choreo_settings t) ||
            (SELECT coalesce(string_agg(t::text, '|'), '') FROM events t) ||
            (SELECT coalesce(string_agg(t::text, '|'), '') FROM clients t) AS text`,
  );
  return z.object({ text: z.string() }).parse(rows[0]).text;
}

describe('client tokens', () => {
  let system: TestSystem;
  let second: { choreo: Choreo; api: HttpClient };

  beforeAll(async () => {
    system = await TestSystem.start('client_tokens', { bus: 'postgres' });
    second = await secondProcess(system);
  });
  afterAll(async () => {
    await second?.choreo.stop();
    await system?.stop();
  });

  it('answers a token once, stores only its hash, and a new one stops the old one at once in every process', async () => {
    const created = createdClient.parse(
      (await system.api.post('/api/clients', { nom: 'Alice', solde: 10 })).body,
    );
    const path = `/api/clients/${created.id}`;
    expect(created.token).toMatch(new RegExp(`^choreo_client_${created.id}_[A-Za-z0-9_-]{43}$`));
    expect((await system.api.as(created.token).get(path)).status).toBe(200);
    expect((await second.api.as(created.token).get(path)).status).toBe(200);
    // the client's own answer does not give the token again
    expect((await system.api.as(created.token).get(path)).text).not.toContain(created.token);

    const reissued = tokenAnswer.parse((await system.api.post(`/api/clients/${created.id}/token`)).body);
    expect(reissued.client_id).toBe(created.id);
    expect(reissued.token).not.toBe(created.token);
    for (const api of [system.api, second.api]) {
      expect((await api.as(created.token).get(path)).status).toBe(401);
      expect((await api.as(reissued.token).get(path)).status).toBe(200);
    }

    const stored = await databaseText(system);
    for (const token of [created.token, reissued.token]) {
      expect(stored).not.toContain(token);
      expect(stored).not.toContain(token.slice(-43));
    }
    const { rows } = await system.choreo.pool.query(
      'SELECT token_sha256 FROM client_tokens WHERE client_id = $1',
      [created.id],
    );
    expect(z.object({ token_sha256: z.instanceof(Buffer) }).parse(rows[0]).token_sha256).toEqual(
      createHash('sha256').update(reissued.token).digest(),
    );
  });

  it('refuses a token whose secret is not the client’s, whose id is another client’s, or that names no client', async () => {
    const alice = createdClient.parse((await system.api.post('/api/clients', { nom: 'A', solde: 1 })).body);
    const bob = createdClient.parse((await system.api.post('/api/clients', { nom: 'B', solde: 1 })).body);
    const secretOf = (token: string) => token.slice(token.lastIndexOf('_') + 1);
    const forged = [
      `choreo_client_${alice.id}_${secretOf(bob.token)}`,
      `choreo_client_${bob.id}_${secretOf(alice.token)}`,
      `choreo_client_2147483647_${secretOf(alice.token)}`,
      `choreo_client_99999999999_${secretOf(alice.token)}`,
      // the id written otherwise (a leading zero, zero, a sign) or the prefix in capitals: the hash is of the whole token
      `choreo_client_0${alice.id}_${secretOf(alice.token)}`,
      `choreo_client_0_${secretOf(alice.token)}`,
      `choreo_client_-${alice.id}_${secretOf(alice.token)}`,
      `choreo_client_+${alice.id}_${secretOf(alice.token)}`,
      `CHOREO_CLIENT_${alice.id}_${secretOf(alice.token)}`,
      `${alice.token}x`,
    ];
    for (const token of forged) {
      expect((await system.api.as(token).get(`/api/clients/${alice.id}`)).status, token).toBe(401);
    }
    expect((await system.api.post('/api/clients/2147483647/token')).status).toBe(404);
  });
});

describe('the generated staff token', () => {
  let system: TestSystem;
  let dataDir: string;
  let otherMachineDir: string;
  const started: Choreo[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'choreo-staff-'));
    otherMachineDir = await mkdtemp(join(tmpdir(), 'choreo-staff-other-'));
    // no CHOREO_ADMIN_TOKEN: the first process generates one into its data folder
    system = await TestSystem.start('staff_token', {
      bus: 'postgres',
      config: { adminToken: undefined, dataDir },
    });
  });
  afterAll(async () => {
    await Promise.all(started.map((choreo) => choreo.stop()));
    await system?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(otherMachineDir, { recursive: true, force: true });
  });

  it('is written readable by its user only, known to the database by its hash only, and works in every process', async () => {
    const file = join(dataDir, ADMIN_TOKEN_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, 'utf8')).trim();
    expect(token).toMatch(/^choreo_staff_[A-Za-z0-9_-]{43}$/);
    expect(system.choreo.staffToken).toEqual({ kind: 'file', path: file, present: true, generated: true });
    const stored = await databaseText(system);
    expect(stored).not.toContain(token);
    expect(stored).toContain(createHash('sha256').update(token).digest('hex'));

    const staff = system.api.as(token);
    expect((await system.api.anonymous().get('/api/audit')).status).toBe(401);
    expect((await staff.get('/api/audit')).status).toBe(200);

    // a process on another machine: same token, no file there (its banner says so)
    const other = await secondProcess(system, { adminToken: undefined, dataDir: otherMachineDir });
    started.push(other.choreo);
    expect(other.choreo.staffToken).toEqual({
      kind: 'file',
      path: join(otherMachineDir, ADMIN_TOKEN_FILE),
      present: false,
      generated: false,
    });
    expect((await other.api.as(token).get('/api/audit')).status).toBe(200);

    // a new token (npm run staff-token -- --new): the old one stops working in every process
    const replacedAt = Date.now();
    await replaceStaffToken(system.choreo.pool, dataDir);
    const newToken = (await readFile(file, 'utf8')).trim();
    expect(newToken).not.toBe(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    for (const api of [system.api, other.api]) {
      // a mismatch reads the hash again, at most once a second
      await eventually(
        async () => (await api.as(newToken).get('/api/audit')).status,
        (status) => status === 200,
        { timeoutMs: STAFF_HASH_TTL_MS, description: 'the new staff token to be accepted' },
      );
      await eventually(
        async () => (await api.as(token).get('/api/audit')).status,
        (status) => status === 401,
        { timeoutMs: STAFF_HASH_TTL_MS * 3, description: 'the old staff token to be refused' },
      );
    }
    expect(Date.now() - replacedAt).toBeLessThan(STAFF_HASH_TTL_MS * 3);
  });

  it('ends an open live stream of the explorer once it is replaced', async () => {
    const file = join(dataDir, ADMIN_TOKEN_FILE);
    const token = (await readFile(file, 'utf8')).trim();
    const stream = await fetch(`${system.api.baseUrl}/api/explorer/live?changes=all&overview=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(stream.status).toBe(200);
    const reader = stream.body?.getReader();
    expect(reader).toBeDefined();
    let ended = false;
    const reading = (async () => {
      for (;;) {
        const next = await reader?.read();
        if (!next || next.done) break;
      }
      ended = true;
    })();
    try {
      await replaceStaffToken(system.choreo.pool, dataDir);
      // The hash is read again within STAFF_HASH_TTL_MS, an open stream's token checked every 5 s.
      await eventually(
        async () => ended,
        (done) => done,
        { timeoutMs: STAFF_HASH_TTL_MS * 4, description: 'the replaced staff token’s stream to end' },
      );
    } finally {
      await reader?.cancel().catch(() => {});
      await reading.catch(() => {});
    }
    const fresh = (await readFile(file, 'utf8')).trim();
    expect((await system.api.as(fresh).get('/api/explorer/session')).status).toBe(200);
  });

  it('keeps the token file readable by its user only, however the file came to be there', async () => {
    const database = await createTestDatabase('staff_token_mode');
    const directory = await mkdtemp(join(tmpdir(), 'choreo-mode-'));
    const file = join(directory, ADMIN_TOKEN_FILE);
    const pool = createPool(database.url, 2);
    try {
      await migrate(pool);
      // A token restored from a backup, readable by everyone: kept as the database's token, made private.
      await writeFile(file, `${newStaffToken()}\n`, { mode: 0o644 });
      await chmod(file, 0o644);
      const kept = await setUpStaffToken(pool, directory);
      expect(kept.location).toMatchObject({ kind: 'file', present: true, generated: false });
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      // Opened up later: the next start closes it again.
      await chmod(file, 0o640);
      await setUpStaffToken(pool, directory);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await pool.end();
      await database.drop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('keeps the old token in the file and in force when its replacement fails', async () => {
    const database = await createTestDatabase('staff_token_replace');
    const directory = await mkdtemp(join(tmpdir(), 'choreo-replace-'));
    const file = join(directory, ADMIN_TOKEN_FILE);
    const pool = createPool(database.url, 2);
    const recordedHash = async () =>
      z
        .object({ value: z.string() })
        .parse(
          (await pool.query("SELECT value FROM choreo_settings WHERE key = 'staff_token_sha256'")).rows[0],
        ).value;
    try {
      await migrate(pool);
      await setUpStaffToken(pool, directory);
      const token = (await readFile(file, 'utf8')).trim();
      // the database refuses the new hash, as it would a write through a failover
      await pool.query(
        "ALTER TABLE choreo_settings ADD CONSTRAINT no_new_staff_token CHECK (key <> 'staff_token_sha256') NOT VALID",
      );

      await expect(replaceStaffToken(pool, directory)).rejects.toThrow(
        /^the database did not take a new staff token, the old one stays in force: .*no_new_staff_token/,
      );

      expect((await readFile(file, 'utf8')).trim()).toBe(token);
      expect(await recordedHash()).toBe(createHash('sha256').update(token).digest('hex'));
      expect(await readdir(directory)).toEqual([ADMIN_TOKEN_FILE]);

      // once the database takes it, the file and the database agree on the new one
      await pool.query('ALTER TABLE choreo_settings DROP CONSTRAINT no_new_staff_token');
      await replaceStaffToken(pool, directory);
      const replaced = (await readFile(file, 'utf8')).trim();
      expect(replaced).not.toBe(token);
      expect(await recordedHash()).toBe(createHash('sha256').update(replaced).digest('hex'));
      expect(await readdir(directory)).toEqual([ADMIN_TOKEN_FILE]);
    } finally {
      await pool.end();
      await database.drop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('tells where the new token is when it is in force but cannot take the place of the file, and puts it there once it can', async () => {
    const database = await createTestDatabase('staff_token_unplaced');
    const directory = await mkdtemp(join(tmpdir(), 'choreo-unplaced-'));
    const pool = createPool(database.url, 2);
    try {
      await migrate(pool);
      // A directory where the file should be, not empty: nothing can be renamed over it.
      await mkdir(join(directory, ADMIN_TOKEN_FILE));
      await writeFile(join(directory, ADMIN_TOKEN_FILE, 'kept'), '');

      const failure: unknown = await replaceStaffToken(pool, directory).then(
        () => undefined,
        (error: unknown) => error,
      );

      expect(failure).toBeInstanceOf(Error);
      const message = failure instanceof Error ? failure.message : '';
      const [, staged] = /^the new staff token is in force but is in (\S+): move it to /.exec(message) ?? [];
      expect(staged).toBeDefined();
      const token = (await readFile(staged ?? '', 'utf8')).trim();
      const { rows } = await pool.query("SELECT value FROM choreo_settings WHERE key = 'staff_token_sha256'");
      expect(rows[0]?.value).toBe(createHash('sha256').update(token).digest('hex'));
      expect(((await stat(staged ?? '')).mode & 0o777).toString(8)).toBe('600');

      // once the way is clear, the next look for the token (npm run staff-token, or a start) finishes the job
      await rm(join(directory, ADMIN_TOKEN_FILE), { recursive: true });
      expect(await locateStaffToken(pool, directory)).toMatchObject({ kind: 'file', present: true });
      expect((await readFile(join(directory, ADMIN_TOKEN_FILE), 'utf8')).trim()).toBe(token);
      expect(await readdir(directory)).toEqual([ADMIN_TOKEN_FILE]);
    } finally {
      await pool.end();
      await database.drop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('is one token when two processes start on a new database at once', async () => {
    const database = await createTestDatabase('staff_token_race');
    const [dirA, dirB] = [
      await mkdtemp(join(tmpdir(), 'choreo-race-')),
      await mkdtemp(join(tmpdir(), 'choreo-race-')),
    ];
    const pool = createPool(database.url, 4);
    try {
      await migrate(pool);
      const [a, b] = await Promise.all([setUpStaffToken(pool, dirA), setUpStaffToken(pool, dirB)]);
      expect(a.hash).toEqual(b.hash);
      const generated = [a, b].filter(({ location }) => location.kind === 'file' && location.generated);
      expect(generated).toHaveLength(1);
    } finally {
      await pool.end();
      await database.drop();
      await rm(dirA, { recursive: true, force: true });
      await rm(dirB, { recursive: true, force: true });
    }
  });
});

describe('tokens in the logs', () => {
  const { logger, lines } = capturingLogger('trace');
  let system: TestSystem;

  beforeAll(async () => {
    system = await TestSystem.start('token_logs', { bus: 'postgres', choreo: { logger } });
  });
  afterAll(async () => {
    await system?.stop();
  });

  /** A request fastify's parser refuses (a header name with a space), with the token in its raw bytes. */
  async function malformedRequest(token: string): Promise<string> {
    const { port } = new URL(system.api.baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(
          `GET /api/magasins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nBad Header: ${token}\r\n\r\n`,
        );
      });
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk.toString();
      });
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  }

  it('never writes a token, good, bad or malformed, on any path, 4xx and 5xx included', async () => {
    const shop = new Shop(system.api);
    const magasin = await shop.magasin();
    const client = createdClient.parse(
      (await system.api.post('/api/clients', { nom: 'Log', solde: 1 })).body,
    );
    const badStaff = `choreo_staff_${randomBytes(32).toString('base64url')}`;
    const badClient = `choreo_client_${client.id}_${randomBytes(32).toString('base64url')}`;
    const odd = `weird-${randomBytes(12).toString('hex')}-!#$%&*+~`;
    const staffToken = system.api.token ?? '';
    const secrets = [staffToken, client.token, badStaff, badClient, odd];

    await system.api.get('/api/audit');
    await system.api.as(client.token).get(`/api/clients/${client.id}`);
    await system.api
      .as(client.token)
      .post(`/api/panier/${client.id}/articles`, { produit_id: 'x', quantite: -1 });
    await system.api.post('/api/magasins', '{not json');
    await system.api.as(badStaff).get('/api/audit');
    await system.api.as(badClient).get(`/api/clients/${client.id}`);
    await system.api.as(odd).get('/api/audit');
    await system.api.request('GET', '/api/audit', undefined, { authorization: `Basic ${odd}` });
    await system.api.request('GET', `/api/magasins/${magasin}?access_token=${staffToken}`);
    expect(await malformedRequest(staffToken)).toMatch(/^HTTP\/1\.1 400/);
    // a 500: the table of client tokens is gone, so reading one fails as no bug of the caller's
    await system.choreo.pool.query('ALTER TABLE client_tokens RENAME TO client_tokens_gone');
    try {
      expect((await system.api.as(client.token).get(`/api/clients/${client.id}`)).status).toBe(500);
    } finally {
      await system.choreo.pool.query('ALTER TABLE client_tokens_gone RENAME TO client_tokens');
    }

    // the paths that log were taken: the 500's error, and the refused request's raw bytes (at trace)
    expect(lines.some((line) => line.msg === 'unexpected error')).toBe(true);
    const clientError = lines.find((line) => String(line.msg).startsWith('client error'));
    expect(clientError, 'fastify logged the malformed request').toBeDefined();
    expect(JSON.stringify(clientError)).toContain('[redacted]');

    const written = lines.map((line) => JSON.stringify(line));
    for (const secret of secrets) {
      const asBytes = JSON.stringify([...Buffer.from(secret)]).slice(1, -1);
      const leaks = written.filter((line) => line.includes(secret) || line.includes(asBytes));
      expect(leaks, `a log line holds ${secret.slice(0, 14)}…`).toEqual([]);
    }
  });
});
