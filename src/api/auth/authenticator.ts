import { randomBytes } from 'node:crypto';
import type { Pool } from '../../persistence/database.js';
import { type Caller, STAFF } from './caller.js';
import { isClientToken } from './client-tokens.js';
import type { StaffCredential } from './staff-token.js';
import { clientIdOfToken, sameHash, tokenHash } from './tokens.js';

export interface AuthenticatorOptions {
  pool: Pool;
  staff: StaffCredential;
  /** CHOREO_METRICS_TOKEN: good for GET /metrics only. */
  metricsToken?: string | undefined;
}

/** Tells who a bearer token belongs to: every comparison is of SHA-256 digests, in constant time. */
export class Authenticator {
  /**
   * A staff token that never leaves this process, for its own calls to its API through fastify's inject (the
   * explorer's demo load): the process needs no copy of the staff token, which another machine may hold.
   */
  readonly inProcessToken = `choreo_process_${randomBytes(32).toString('base64url')}`;
  private readonly inProcessHash = tokenHash(this.inProcessToken);
  private readonly metricsHash: Buffer | null;

  constructor(private readonly options: AuthenticatorOptions) {
    this.metricsHash = options.metricsToken === undefined ? null : tokenHash(options.metricsToken);
  }

  /** The caller the token names, or null when it is no current token. */
  async callerOf(token: string): Promise<Caller | null> {
    const clientId = clientIdOfToken(token);
    if (clientId !== undefined) {
      return (await isClientToken(this.options.pool, clientId, token)) ? { role: 'client', clientId } : null;
    }
    const hash = tokenHash(token);
    if (sameHash(hash, this.inProcessHash)) return STAFF;
    if (this.metricsHash !== null && sameHash(hash, this.metricsHash)) return { role: 'metrics' };
    return (await this.options.staff.matches(hash)) ? STAFF : null;
  }
}
