import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runningServer, runningWatchdog } from '../src/startup/embedded-postgres.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/free-port.js';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };

/** choreo started as a person starts it, in a process group of its own (as a terminal would). */
class StartedChoreo {
  private readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    private readonly child: ChildProcess,
    readonly apiPort: number,
  ) {
    const keep = (chunk: Buffer) => this.lines.push(...chunk.toString().split('\n'));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(command: string, args: string[], env: Record<string, string>, apiPort: number): StartedChoreo {
    const child = spawn(command, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env, PORT: String(apiPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    return new StartedChoreo(child, apiPort);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('not started');
    return this.child.pid;
  }

  get output(): string {
    return this.lines.join('\n');
  }

  get api(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  /** The banner's "kill <pid>": choreo's own node process, under npm or not. */
  async choreoPid(): Promise<number> {
    const banner = await eventually(
      async () => this.output,
      (output) => /stop +Ctrl-C, or kill \d+/.test(output),
      { ...WAIT, description: `the start banner; output so far:\n${this.output}` },
    );
    return Number(/stop +Ctrl-C, or kill (\d+)/.exec(banner)?.[1]);
  }

  /** Like a Ctrl-C at the terminal: the signal goes to every process of the group. */
  interruptGroup(): void {
    process.kill(-this.pid, 'SIGINT');
  }

  killGroupHard(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm start on the embedded PostgreSQL, stopped as a person stops it', () => {
  let directory: string;
  let dataDir: string;
  let env: Record<string, string>;
  const started: StartedChoreo[] = [];

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'choreo-start-'));
    // As root the embedded server runs as the user postgres, which must be able to enter the folder.
    await chmod(directory, 0o755);
    dataDir = join(directory, 'postgres');
    env = {
      // The embedded server even on a machine whose PostgreSQL answers at the default address.
      DATABASE_URL: 'embedded',
      CHOREO_DATA_DIR: directory,
      EMBEDDED_POSTGRES_PORT: String(await freePort()),
      BUS: 'postgres',
      // Unset: the first start generates the staff token into CHOREO_DATA_DIR/admin-token.
      CHOREO_ADMIN_TOKEN: '',
    };
  });

  /** The staff token as a user reads it: from the file the first start wrote. */
  async function staffAuthorization(): Promise<Record<string, string>> {
    const token = (await readFile(join(directory, 'admin-token'), 'utf8')).trim();
    return { authorization: `Bearer ${token}` };
  }
  afterEach(() => {
    for (const choreo of started.splice(0)) choreo.killGroupHard();
  });
  afterAll(async () => {
    const left = await runningServer(dataDir);
    if (left) process.kill(left.pid, 'SIGQUIT');
    await rm(directory, { recursive: true, force: true });
  });

  /** Nothing of that run is left: choreo's process, its port, the server and its watchdog. */
  async function expectAllGone(choreoPid: number, apiPort: number): Promise<void> {
    await eventually(
      async () => ({
        choreo: isAlive(choreoPid),
        port: await portAnswers(apiPort),
        server: (await runningServer(dataDir)) !== null,
        watchdog: (await runningWatchdog(dataDir)) !== null,
      }),
      (left) => !left.choreo && !left.port && !left.server && !left.watchdog,
      { ...WAIT, description: 'choreo, its port, the embedded server and its watchdog to be gone' },
    );
  }

  it('SIGTERM to the npm process stops choreo and its embedded server', async () => {
    // given `npm start` serving on the embedded server, with a store created
    const choreo = StartedChoreo.start('npm', ['start'], env, await freePort());
    started.push(choreo);
    const choreoPid = await choreo.choreoPid();
    expect(choreoPid).not.toBe(choreo.pid);
    expect(choreo.output).toContain(
      `embedded PostgreSQL 18 on 127.0.0.1:${env.EMBEDDED_POSTGRES_PORT}, data in ${dataDir}`,
    );
    const created = await fetch(`${choreo.api}/api/magasins`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await staffAuthorization()) },
      body: JSON.stringify({ nom: 'Survivant', ville: 'Québec' }),
    });
    expect(created.status).toBe(201);

    // when the npm process gets SIGTERM (kill <pid of npm start>)
    process.kill(choreo.pid, 'SIGTERM');

    // then nothing is left running
    await expectAllGone(choreoPid, choreo.apiPort);
  });

  it('Ctrl-C stops choreo and its embedded server, whose data survived the previous run', async () => {
    // given choreo started again on the same data
    const choreo = StartedChoreo.start(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts'],
      env,
      await freePort(),
    );
    started.push(choreo);
    const choreoPid = await choreo.choreoPid();
    const magasins = await (
      await fetch(`${choreo.api}/api/magasins`, { headers: await staffAuthorization() })
    ).json();
    expect(magasins).toEqual([expect.objectContaining({ nom: 'Survivant' })]);

    // when the terminal sends SIGINT to the process group
    choreo.interruptGroup();

    // then it exits cleanly, and nothing is left running
    expect(await choreo.exited).toEqual({ code: 0, signal: null });
    await expectAllGone(choreoPid, choreo.apiPort);
  });

  it('a choreo killed with SIGKILL leaves no server behind', async () => {
    // given choreo running on the embedded server
    const choreo = StartedChoreo.start(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts'],
      env,
      await freePort(),
    );
    started.push(choreo);
    const choreoPid = await choreo.choreoPid();
    expect(await runningServer(dataDir)).not.toBeNull();

    // when it is killed without a chance to stop anything
    process.kill(choreoPid, 'SIGKILL');

    // then its watchdog stops the server
    await expectAllGone(choreoPid, choreo.apiPort);
  });
});
