import { z } from 'zod';
import { issueClientToken } from '../../api/auth/client-tokens.js';
import { NotFoundError } from '../../domain/errors.js';
import { fromCents, toCents } from '../../domain/money.js';
import { type Pool, type PoolClient, withTransaction } from '../../persistence/database.js';
import { appendToStream } from '../../persistence/event-store.js';

const clientRowSchema = z.object({ id: z.number().int(), nom: z.string(), solde_cents: z.number().int() });

export interface Client {
  id: number;
  nom: string;
  solde: number;
}

function toClient(row: unknown): Client {
  const { solde_cents, ...rest } = clientRowSchema.parse(row);
  return { ...rest, solde: fromCents(solde_cents) };
}

export class ClientRepository {
  constructor(private readonly pool: Pool) {}

  /** Creates the client (create) and its bearer token, in one transaction: the token is returned, never stored. */
  async createWithToken(input: { nom: string; solde: number }): Promise<Client & { token: string }> {
    return withTransaction(this.pool, async (tx) => {
      const client = await this.create(input, tx);
      return { ...client, token: await issueClientToken(tx, client.id) };
    });
  }

  /** Creates the client and records its opening balance in the event store, so the audit can start there. */
  async create(input: { nom: string; solde: number }, within?: PoolClient): Promise<Client> {
    if (within === undefined) return withTransaction(this.pool, (tx) => this.create(input, tx));
    const result = await within.query(
      'INSERT INTO clients (nom, solde_cents) VALUES ($1, $2) RETURNING id, nom, solde_cents',
      [input.nom, toCents(input.solde)],
    );
    const client = toClient(result.rows[0]);
    await appendToStream(within, `client-${client.id}`, 0, [
      {
        event_type: 'ClientCree',
        source: 'client-service',
        causation_id: null,
        data: { client_id: client.id, solde: client.solde },
      },
    ]);
    return client;
  }

  async get(id: number): Promise<Client> {
    const result = await this.pool.query('SELECT id, nom, solde_cents FROM clients WHERE id = $1', [id]);
    if (!result.rows[0]) throw new NotFoundError(`client ${id} not found`);
    return toClient(result.rows[0]);
  }
}
