import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../observability/logger.js';
import { checkOut, type Pool, type PoolClient, withTransaction } from '../../persistence/database.js';
import { looksLikeStaffToken, newStaffToken, sameHash, tokenHash } from './tokens.js';

/** The row of `choreo_settings` that keeps the staff token's SHA-256 (hex): every process of a database reads it. */
export const STAFF_TOKEN_SETTING = 'staff_token_sha256';
/** The file, in CHOREO_DATA_DIR, where a generated staff token is written (mode 0600). */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** One process at a time sets the staff token up (any constant works, the same in every process). */
const STAFF_TOKEN_LOCK_KEY = 7_001_433;

/**
 * How long a process trusts the hash it read: a staff token replaced (`npm run staff-token -- --new`) stops
 * working in every process within this time. A token that does not match re-reads it at once (at most once
 * a second), so the new one works without waiting.
 */
export const STAFF_HASH_TTL_MS = 5_000;
const MISS_REREAD_INTERVAL_MS = 1_000;

const hashSettingSchema = z.object({
  value: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'is not a SHA-256 digest in hexadecimal')
    .transform((hex) => Buffer.from(hex, 'hex')),
});

/** Where the staff token is, for the start banner and `npm run staff-token` (never the token itself). */
export type StaffTokenLocation =
  | { kind: 'environment' }
  /** `present`: the file holds the token the database knows; otherwise another machine generated it. */
  | { kind: 'file'; path: string; present: boolean; generated: boolean };

export function adminTokenPath(dataDir: string): string {
  return join(dataDir, ADMIN_TOKEN_FILE);
}

async function readHash(db: Pool | PoolClient): Promise<Buffer | undefined> {
  const { rows } = await db.query('SELECT value FROM choreo_settings WHERE key = $1', [STAFF_TOKEN_SETTING]);
  return rows.length === 0 ? undefined : hashSettingSchema.parse(rows[0]).value;
}

/** The staff token in the file, if the file exists and holds one. */
async function tokenInFile(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return looksLikeStaffToken(text) ? text : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Writes the token so that only this user can ever read it: a new file created with mode 0600 (never
 * world-readable, not even for a moment), then its caller renames it over the old one.
 */
async function stageTokenFile(path: string, token: string, dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  const staged = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const file = await open(staged, 'wx', 0o600);
  try {
    try {
      await file.writeFile(`${token}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
  return staged;
}

async function writeTokenFile(path: string, token: string, dataDir: string): Promise<void> {
  const staged = await stageTokenFile(path, token, dataDir);
  try {
    await rename(staged, path);
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
}

/**
 * The file holds the token in use, so only its user may read it, however it came to be there (restored
 * from a backup, copied by hand): any access for the group or others is taken away. A file of another
 * user's, which this one cannot change, is left as it is.
 */
async function keepPrivate(path: string): Promise<void> {
  if (((await stat(path)).mode & 0o077) === 0) return;
  try {
    await chmod(path, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}

/** Whether the file holds the token whose hash this is. */
async function holdsToken(path: string, hash: Buffer): Promise<boolean> {
  const token = await tokenInFile(path);
  return token !== undefined && sameHash(tokenHash(token), hash);
}

async function fileHolds(path: string, hash: Buffer): Promise<boolean> {
  const holds = (await holdsToken(path, hash)) || (await finishInterruptedReplacement(path, hash));
  if (holds) await keepPrivate(path);
  return holds;
}

/**
 * A replacement killed between recording its hash and renaming its file left the token in force in a
 * staged file beside the token file (`admin-token.<pid>.<random>`): that file takes its place.
 */
async function finishInterruptedReplacement(path: string, hash: Buffer): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  for (const name of names.filter((candidate) => candidate.startsWith(`${basename(path)}.`))) {
    const staged = join(dirname(path), name);
    if (await holdsToken(staged, hash)) {
      // Where it cannot (the token file's path taken by a folder, say), the caller says the token is not there.
      return rename(staged, path).then(
        () => true,
        () => false,
      );
    }
  }
  return false;
}

/**
 * The database's staff token, when CHOREO_ADMIN_TOKEN is not set: the first process finds no hash, writes a
 * new token to `<dataDir>/admin-token` (or keeps the one already there, after a database reset) and records
 * its hash; every other process, here or on another machine, reads the hash. Under an advisory lock, and the
 * insert does nothing on a conflict: two first starts agree on one token.
 */
export async function setUpStaffToken(
  pool: Pool,
  dataDir: string,
): Promise<{ hash: Buffer; location: StaffTokenLocation }> {
  const path = adminTokenPath(dataDir);
  return withTransaction(pool, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [STAFF_TOKEN_LOCK_KEY]);
    const recorded = await readHash(tx);
    if (recorded !== undefined) {
      return {
        hash: recorded,
        location: { kind: 'file', path, present: await fileHolds(path, recorded), generated: false },
      };
    }
    const kept = await tokenInFile(path);
    const token = kept ?? newStaffToken();
    // The file first: the database never knows a token that no file holds.
    if (kept === undefined) await writeTokenFile(path, token, dataDir);
    await tx.query('INSERT INTO choreo_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
      STAFF_TOKEN_SETTING,
      tokenHash(token).toString('hex'),
    ]);
    const hash = (await readHash(tx)) ?? tokenHash(token);
    return {
      hash,
      location: { kind: 'file', path, present: await fileHolds(path, hash), generated: kept === undefined },
    };
  });
}

/**
 * A new staff token (`npm run staff-token -- --new`): its hash recorded in place of the old one, then the
 * token written to the file. The old token stops working in every process within STAFF_HASH_TTL_MS.
 */
export async function replaceStaffToken(pool: Pool, dataDir: string): Promise<string> {
  const path = adminTokenPath(dataDir);
  const token = newStaffToken();
  const hash = tokenHash(token);
  // The file takes the new token only once the database has its hash: a replacement that fails leaves the
  // old token in the file and in force, never a file whose token no process accepts.
  const staged = await stageTokenFile(path, token, dataDir);
  let checkedOut: Awaited<ReturnType<typeof checkOut>>;
  try {
    checkedOut = await checkOut(pool);
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
  const { client, release } = checkedOut;
  try {
    const recording = await recordUnderSessionLock(client, pool, hash);
    if (recording.kind === 'refused') {
      await rm(staged, { force: true });
      const reason = recording.error instanceof Error ? recording.error.message : String(recording.error);
      throw new Error(`the database did not take a new staff token, the old one stays in force: ${reason}`, {
        cause: recording.error,
      });
    }
    if (recording.kind === 'unknown') {
      throw new Error(
        `the database did not say whether it took the new staff token, kept in ${staged}: run this again, ` +
          `or move that file to ${path} if the old token no longer works`,
        { cause: recording.error },
      );
    }
    try {
      await rename(staged, path);
    } catch (error) {
      throw new Error(
        `the new staff token is in force but is in ${staged}: move it to ${path} (the next start tries to)`,
        {
          cause: error,
        },
      );
    }
  } finally {
    // A lock that could not be freed in order is freed by closing its connection.
    const unlocked = await client.query('SELECT pg_advisory_unlock($1)', [STAFF_TOKEN_LOCK_KEY]).then(
      () => true,
      () => false,
    );
    release(!unlocked);
  }
  return path;
}

type Recording = { kind: 'recorded' } | { kind: 'refused' | 'unknown'; error: unknown };

/**
 * Records the hash under a session lock that the caller frees once the file is renamed: two replacements at
 * once leave in the file the token whose hash the database kept, and a first start waits for the file.
 */
async function recordUnderSessionLock(client: PoolClient, pool: Pool, hash: Buffer): Promise<Recording> {
  try {
    await client.query('SELECT pg_advisory_lock($1)', [STAFF_TOKEN_LOCK_KEY]);
  } catch (error) {
    return { kind: 'refused', error };
  }
  try {
    await client.query(
      `INSERT INTO choreo_settings (key, value) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, set_at = now()`,
      [STAFF_TOKEN_SETTING, hash.toString('hex')],
    );
    return { kind: 'recorded' };
  } catch (error) {
    // A connection lost while the insert committed leaves its outcome unknown: the hash now recorded says it.
    try {
      const recorded = await readHash(pool);
      return recorded !== undefined && sameHash(recorded, hash)
        ? { kind: 'recorded' }
        : { kind: 'refused', error };
    } catch {
      return { kind: 'unknown', error };
    }
  }
}

/** Where the staff token of this database is, without creating anything (for `npm run staff-token`). */
export async function locateStaffToken(
  pool: Pool,
  dataDir: string,
): Promise<StaffTokenLocation | { kind: 'none'; path: string }> {
  const path = adminTokenPath(dataDir);
  const recorded = await readHash(pool);
  if (recorded === undefined) return { kind: 'none', path };
  return { kind: 'file', path, present: await fileHolds(path, recorded), generated: false };
}

/** Checks a token's hash against the staff token's, in constant time. */
export interface StaffCredential {
  matches(hash: Buffer): Promise<boolean>;
}

/** CHOREO_ADMIN_TOKEN: fixed for the life of the process. */
export function fixedStaffCredential(token: string): StaffCredential {
  const expected = tokenHash(token);
  return { matches: async (hash) => sameHash(hash, expected) };
}

/**
 * The staff token's hash as the database has it, read again after STAFF_HASH_TTL_MS, and on a mismatch at
 * most once a second. While the database does not answer, the hash last read stands.
 */
export class StoredStaffCredential implements StaffCredential {
  private readAt: number;
  private rereading: Promise<void> | null = null;

  constructor(
    private readonly pool: Pool,
    private hash: Buffer,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.readAt = now();
  }

  async matches(hash: Buffer): Promise<boolean> {
    if (this.now() - this.readAt >= STAFF_HASH_TTL_MS) await this.reread();
    if (sameHash(hash, this.hash)) return true;
    if (this.now() - this.readAt < MISS_REREAD_INTERVAL_MS) return false;
    await this.reread();
    return sameHash(hash, this.hash);
  }

  private reread(): Promise<void> {
    this.rereading ??= readHash(this.pool)
      .then(
        (hash) => {
          if (hash !== undefined) this.hash = hash;
        },
        (error: unknown) => {
          this.logger.warn(
            { err: error },
            'could not read the staff token hash again; the last one read stands',
          );
        },
      )
      .finally(() => {
        this.readAt = this.now();
        this.rereading = null;
      });
    return this.rereading;
  }
}
