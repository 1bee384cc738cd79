import { z } from 'zod';
import { type SagaEnvelope, type StoredEvent, sagaEnvelopeSchema } from '../domain/events.js';
import { pairsToRecord } from './field-pairs.js';

/** A stream entry carries the envelope as flat string fields, readable with redis-cli. */
export function encodeEnvelope(event: StoredEvent): string[] {
  return [
    'event_id',
    event.event_id,
    'event_type',
    event.event_type,
    'aggregate_id',
    event.aggregate_id,
    'version',
    String(event.version),
    'position',
    String(event.position),
    'timestamp',
    event.timestamp,
    'source',
    event.source,
    'correlation_id',
    event.correlation_id,
    'causation_id',
    event.causation_id ?? '',
    'data',
    JSON.stringify(event.data),
  ];
}

const jsonObject = z.string().transform((text, context) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    context.addIssue({ code: 'custom', message: 'is not valid JSON' });
    return z.NEVER;
  }
});

const wireSchema = z.object({
  event_id: z.string(),
  event_type: z.string(),
  aggregate_id: z.string(),
  version: z.coerce.number(),
  position: z.coerce.number(),
  timestamp: z.string(),
  source: z.string(),
  correlation_id: z.string(),
  causation_id: z.string().transform((value) => (value === '' ? null : value)),
  data: jsonObject,
});

export type DecodeResult = { ok: true; envelope: SagaEnvelope } | { ok: false; reason: string };

/** Validates an entry down to its payload; what fails is reported, never half-applied. */
export function decodeEnvelope(fields: readonly string[]): DecodeResult {
  const wire = wireSchema.safeParse(pairsToRecord(fields));
  if (!wire.success) return { ok: false, reason: `invalid envelope: ${z.prettifyError(wire.error)}` };
  const envelope = sagaEnvelopeSchema.safeParse(wire.data);
  if (!envelope.success)
    return { ok: false, reason: `invalid ${wire.data.event_type}: ${z.prettifyError(envelope.error)}` };
  return { ok: true, envelope: envelope.data };
}
