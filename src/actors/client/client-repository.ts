import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { fromCents, toCents } from '../../domain/money.js';
import type { Pool } from '../../persistence/database.js';

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

  async create(input: { nom: string; solde: number }): Promise<Client> {
    const result = await this.pool.query(
      'INSERT INTO clients (nom, solde_cents) VALUES ($1, $2) RETURNING id, nom, solde_cents',
      [input.nom, toCents(input.solde)],
    );
    return toClient(result.rows[0]);
  }

  async get(id: number): Promise<Client> {
    const result = await this.pool.query('SELECT id, nom, solde_cents FROM clients WHERE id = $1', [id]);
    if (!result.rows[0]) throw new NotFoundError(`client ${id} not found`);
    return toClient(result.rows[0]);
  }
}
