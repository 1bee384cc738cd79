import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { POSTGRES_INTEGER_MAX } from '../schemas.js';

/**
 * Bearer tokens: 32 random bytes in base64url behind a prefix that says what the token is for, so that a
 * token found in a file or a paste is recognisable (and a secret scanner can match it). A client's token
 * carries its client id, so that its hash is looked up by primary key.
 */
export const STAFF_TOKEN_PREFIX = 'choreo_staff_';
export const CLIENT_TOKEN_PREFIX = 'choreo_client_';
const SECRET_BYTES = 32;
/** 32 bytes in base64url, without padding. */
const SECRET_PATTERN = '[A-Za-z0-9_-]{43}';
const CLIENT_TOKEN = new RegExp(`^${CLIENT_TOKEN_PREFIX}([1-9][0-9]{0,9})_${SECRET_PATTERN}$`);
const STAFF_TOKEN = new RegExp(`^${STAFF_TOKEN_PREFIX}${SECRET_PATTERN}$`);

/** A token is kept only as this: its SHA-256 (the secret part is 256 random bits, so no salt or stretching). */
export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Compares two SHA-256 digests in constant time (both are always 32 bytes). */
export function sameHash(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function secret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

export function newStaffToken(): string {
  return `${STAFF_TOKEN_PREFIX}${secret()}`;
}

export function newClientToken(clientId: number): string {
  return `${CLIENT_TOKEN_PREFIX}${clientId}_${secret()}`;
}

/** Whether the text has the shape of a generated staff token (e.g. the content of the admin-token file). */
export function looksLikeStaffToken(text: string): boolean {
  return STAFF_TOKEN.test(text);
}

/** The client id a client token names, if it has the shape of one (its secret is checked elsewhere). */
export function clientIdOfToken(token: string): number | undefined {
  const match = CLIENT_TOKEN.exec(token);
  if (!match?.[1]) return undefined;
  const clientId = Number(match[1]);
  return clientId <= POSTGRES_INTEGER_MAX ? clientId : undefined;
}

/** The token of an `Authorization: Bearer <token>` header; undefined for any other shape. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([\x21-\x7e]{1,512}) *$/i.exec(header);
  return match?.[1];
}
