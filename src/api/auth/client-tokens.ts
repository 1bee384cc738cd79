import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import type { Pool, PoolClient } from '../../persistence/database.js';
import { newClientToken, sameHash, tokenHash } from './tokens.js';

const tokenRowSchema = z.object({
  token_sha256: z.instanceof(Buffer).refine((hash) => hash.length === 32, 'is not a SHA-256 digest'),
});

/**
 * Gives the client a new token and returns it: the only time it exists in clear. Its SHA-256 replaces the
 * previous one, which stops working at once in every process (each request reads the row). Throws
 * NotFoundError for an unknown client.
 */
export async function issueClientToken(db: Pool | PoolClient, clientId: number): Promise<string> {
  const token = newClientToken(clientId);
  const issued = await db.query(
    `INSERT INTO client_tokens (client_id, token_sha256)
     SELECT id, $2 FROM clients WHERE id = $1
     ON CONFLICT (client_id) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, issued_at = now()`,
    [clientId, tokenHash(token)],
  );
  if (issued.rowCount === 0) throw new NotFoundError(`client ${clientId} not found`);
  return token;
}

/** Whether `token` is the current token of client `clientId` (the id the token names). */
export async function isClientToken(pool: Pool, clientId: number, token: string): Promise<boolean> {
  const { rows } = await pool.query('SELECT token_sha256 FROM client_tokens WHERE client_id = $1', [
    clientId,
  ]);
  if (rows.length === 0) return false;
  return sameHash(tokenHash(token), tokenRowSchema.parse(rows[0]).token_sha256);
}
