import { z } from 'zod';
import type { HttpClient } from './http-client.js';

const deadLetterList = z.array(
  z.object({
    id: z.string(),
    stream: z.string(),
    entry_id: z.string(),
    group: z.string(),
    reason: z.string(),
    deliveries: z.number(),
    fields: z.record(z.string(), z.string()),
  }),
);

export type DeadLetter = z.infer<typeof deadLetterList>[number];

/** GET /api/dead-letters, validated. */
export async function deadLettersOf(api: HttpClient): Promise<DeadLetter[]> {
  return deadLetterList.parse((await api.get('/api/dead-letters')).body);
}
