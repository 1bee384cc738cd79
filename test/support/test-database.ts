import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_TEST_DATABASE_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The server the test databases are made on: the machine's, or the embedded one that global-setup.ts
 * starts when none answers (it sets TEST_DATABASE_ADMIN_URL for the workers).
 */
export const TEST_DATABASE_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? DEFAULT_TEST_DATABASE_ADMIN_URL;
const ADMIN_URL = TEST_DATABASE_ADMIN_URL;

/** host:port of that server, for a test that puts a proxy in front of it. */
export const TEST_DATABASE_HOST = new URL(ADMIN_URL).hostname;
export const TEST_DATABASE_PORT = Number(new URL(ADMIN_URL).port || 5432);

export interface TestDatabase {
  url: string;
  name: string;
  drop: () => Promise<void>;
}

/** A fresh database per test file, dropped afterwards: tests never see each other's rows. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `choreo_test_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
