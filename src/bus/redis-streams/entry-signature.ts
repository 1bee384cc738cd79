import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Pool } from '../../persistence/database.js';

/** The field the relay appends, last, to every entry it publishes. */
export const SIGNATURE_FIELD = 'signature';

/** The row of `choreo_settings` that keeps the key; the database is the one thing every process shares. */
export const SIGNING_KEY_SETTING = 'bus_signing_key';

const SIGNATURE_BYTES = 32;
const signingKeySchema = z.string().regex(/^[0-9a-f]{64}$/, 'is not 32 bytes in hexadecimal');
const settingRowSchema = z.object({ value: signingKeySchema });

/** Why an entry is refused before it is decoded: names are metric labels, so there are few of them. */
export type SignatureRejection = 'signature_missing' | 'signature_invalid';

export type SignatureCheck = { ok: true } | { ok: false; rejection: SignatureRejection; reason: string };

/**
 * Proves that a stream entry was written by choreo's relay: Redis accepts an XADD from anyone who
 * reaches it, and a consumer would otherwise apply a well-formed envelope it never should (an effect with
 * no event in the store). The relay signs each entry with HMAC-SHA256 under a key kept in PostgreSQL,
 * never in Redis; consumers check it before decoding anything.
 *
 * What is signed: the stream's key and every field before the signature, in order, as a JSON array,
 * which no two different entries share (a field moved, added, or an entry copied to another stream
 * changes it). A copy of a genuine entry on its own stream verifies: that is a redelivery, which every
 * group dedupes (the inbox by event_id, the saga by version), and what a re-drive does.
 */
export class EntrySignature {
  private constructor(private readonly key: Buffer) {}

  static fromHex(hex: string): EntrySignature {
    return new EntrySignature(Buffer.from(signingKeySchema.parse(hex), 'hex'));
  }

  /** `fields` followed by the signature field, ready for XADD on `streamKey`. */
  sign(streamKey: string, fields: readonly string[]): string[] {
    return [...fields, SIGNATURE_FIELD, this.digest(streamKey, fields).toString('base64')];
  }

  /** Checks the last field pair of an entry read from `streamKey` (constant-time comparison). */
  verify(streamKey: string, entryFields: readonly string[]): SignatureCheck {
    const length = entryFields.length;
    if (length < 2 || length % 2 !== 0 || entryFields[length - 2] !== SIGNATURE_FIELD) {
      return {
        ok: false,
        rejection: 'signature_missing',
        reason: "not published by choreo's relay: signature missing",
      };
    }
    const given = Buffer.from(entryFields[length - 1] ?? '', 'base64');
    const expected = this.digest(streamKey, entryFields.slice(0, length - 2));
    if (given.length !== SIGNATURE_BYTES || !timingSafeEqual(given, expected)) {
      return {
        ok: false,
        rejection: 'signature_invalid',
        reason: "not published by choreo's relay: signature invalid",
      };
    }
    return { ok: true };
  }

  private digest(streamKey: string, fields: readonly string[]): Buffer {
    return createHmac('sha256', this.key)
      .update(JSON.stringify([streamKey, ...fields]))
      .digest();
  }
}

/**
 * The database's signing key: made by the first process that needs it (a concurrent first start loses
 * the insert and reads the winner's key), then read by every other. Kept with the data, so a Redis
 * flushed or replaced keeps working, and an entry written for another database fails to verify.
 */
export async function loadEntrySignature(pool: Pool): Promise<EntrySignature> {
  await pool.query('INSERT INTO choreo_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
    SIGNING_KEY_SETTING,
    randomBytes(SIGNATURE_BYTES).toString('hex'),
  ]);
  const { rows } = await pool.query('SELECT value FROM choreo_settings WHERE key = $1', [
    SIGNING_KEY_SETTING,
  ]);
  return EntrySignature.fromHex(settingRowSchema.parse(rows[0]).value);
}

/**
 * Loads the key once for the whole process, when first needed (the relay's first batch, a consumer's
 * first read); a failure (the database away) is not kept, so the next call tries again.
 */
export function entrySignatureLoader(pool: Pool): () => Promise<EntrySignature> {
  let loading: Promise<EntrySignature> | null = null;
  return () => {
    loading ??= loadEntrySignature(pool).catch((error: unknown) => {
      loading = null;
      throw error;
    });
    return loading;
  };
}
