import fc from 'fast-check';
import { z } from 'zod';

/**
 * Requests for the property-based bad-input tests: the app's route table (fastify's `printRoutes`), the
 * schemas its OpenAPI document publishes for each route, and fast-check arbitraries that send valid-shaped
 * values at and beyond every published bound, wrong types, huge numbers, NaN-like text, long strings,
 * NUL characters and unicode, whether or not the route declares a bound.
 */

export interface RouteInTable {
  method: string;
  /** As fastify spells it: `/api/panier/:clientId/articles`, `/docs/*`. */
  url: string;
}

/** The routes of `printRoutes({ commonPrefix: false })`, one per method (HEAD included). */
export function routesOfTable(printedTree: string): RouteInTable[] {
  const pathAtDepth: string[] = [];
  const routes: RouteInTable[] = [];
  for (const line of printedTree.split('\n')) {
    const node = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!node) continue;
    const depth = (node[1] ?? '').length / 4;
    const path = `${depth === 0 ? '' : (pathAtDepth[depth - 1] ?? '')}${node[2] ?? ''}`;
    pathAtDepth.length = depth;
    pathAtDepth[depth] = path;
    for (const method of (node[3] ?? '').split(',').map((name) => name.trim())) {
      if (method !== '') routes.push({ method, url: path });
    }
  }
  return routes;
}

/** The part of JSON Schema that the OpenAPI document of a fastify + zod app uses for inputs. */
export interface InputSchema {
  type?: string | undefined;
  properties?: Record<string, InputSchema> | undefined;
  required?: string[] | undefined;
  items?: InputSchema | undefined;
  anyOf?: InputSchema[] | undefined;
  enum?: unknown[] | undefined;
  minimum?: number | undefined;
  maximum?: number | undefined;
  exclusiveMinimum?: boolean | number | undefined;
  exclusiveMaximum?: boolean | number | undefined;
  multipleOf?: number | undefined;
  minLength?: number | undefined;
  maxLength?: number | undefined;
  pattern?: string | undefined;
}

const inputSchema: z.ZodType<InputSchema> = z.lazy(() =>
  z.object({
    type: z.string().optional(),
    properties: z.record(z.string(), inputSchema).optional(),
    required: z.array(z.string()).optional(),
    items: inputSchema.optional(),
    anyOf: z.array(inputSchema).optional(),
    enum: z.array(z.unknown()).optional(),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    exclusiveMinimum: z.union([z.boolean(), z.number()]).optional(),
    exclusiveMaximum: z.union([z.boolean(), z.number()]).optional(),
    multipleOf: z.number().optional(),
    minLength: z.number().optional(),
    maxLength: z.number().optional(),
    pattern: z.string().optional(),
  }),
);

const operationSchema = z.object({
  parameters: z
    .array(
      z.object({
        in: z.enum(['path', 'query', 'header', 'cookie']),
        name: z.string(),
        required: z.boolean().optional(),
        schema: inputSchema,
      }),
    )
    .optional(),
  requestBody: z
    .object({ content: z.record(z.string(), z.object({ schema: inputSchema.optional() })) })
    .optional(),
});
export type Operation = z.infer<typeof operationSchema>;

const openApiDocument = z.object({
  paths: z.record(z.string(), z.record(z.string(), operationSchema)),
});

/** The published inputs of each route, by `METHOD /fastify/:url`; hidden routes are absent. */
export function operationsOf(document: unknown): Map<string, Operation> {
  const operations = new Map<string, Operation>();
  for (const [path, byMethod] of Object.entries(openApiDocument.parse(document).paths)) {
    const url = path.replaceAll(/\{(\w+)\}/g, ':$1');
    for (const [method, operation] of Object.entries(byMethod)) {
      operations.set(`${method.toUpperCase()} ${url}`, operation);
    }
  }
  return operations;
}

export type GeneratedBody =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; text: string; contentType: string };

export interface GeneratedRequest {
  method: string;
  /** The path with its parameters filled in, percent-encoded. */
  path: string;
  /** Query pairs, percent-encoded, a key repeated for an array. */
  query: [string, string][];
  headers: Record<string, string>;
  body: GeneratedBody;
}

/** Values that exist in the system under test, so that generated requests also reach past the 404s. */
export interface KnownValues {
  ids: number[];
  strings: string[];
}

const INTEGER_MAX = 2 ** 31 - 1;

const HOSTILE_NUMBERS = [
  0,
  -1,
  0.5,
  1.5,
  1.234,
  0.001,
  INTEGER_MAX,
  INTEGER_MAX + 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  2 ** 63,
  1e12,
  1e15,
  1e20,
  1e30,
  -1e30,
  1e308,
  Number.MIN_VALUE,
];

const HOSTILE_TEXTS = [
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'undefined',
  'true',
  '1e30',
  '1e+30',
  '2147483648',
  '9223372036854775808',
  '-1',
  '1.5',
  '0x10',
  ' 1',
  '+1',
  '00001',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'é',
  '𝓬𝓱𝓸𝓻𝓮𝓸 👩‍👩‍👧',
  "' OR 1=1 --",
  '../../etc/passwd',
  '%',
  'x'.repeat(10_000),
  '𝔠'.repeat(3_000),
];

const WRONG_TYPES: unknown[] = [null, true, false, [], {}, [1], { nested: 1 }];

/** Any JSON, for bodies and properties no schema describes. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(...WRONG_TYPES, ...HOSTILE_NUMBERS, ...HOSTILE_TEXTS),
  fc.jsonValue({ maxDepth: 2 }),
);

/** What a field may be sent as: values its schema accepts, and values at and beyond it. */
interface FieldValues {
  valid: fc.Arbitrary<unknown>;
  hostile: fc.Arbitrary<unknown>;
}

function lowestValid(schema: InputSchema, step: number): number | undefined {
  if (typeof schema.exclusiveMinimum === 'number') return schema.exclusiveMinimum + step;
  if (schema.minimum === undefined) return undefined;
  return schema.exclusiveMinimum === true ? schema.minimum + step : schema.minimum;
}

function highestValid(schema: InputSchema, step: number): number | undefined {
  if (typeof schema.exclusiveMaximum === 'number') return schema.exclusiveMaximum - step;
  if (schema.maximum === undefined) return undefined;
  return schema.exclusiveMaximum === true ? schema.maximum - step : schema.maximum;
}

function numberValues(schema: InputSchema, known: KnownValues): FieldValues {
  const integer = schema.type === 'integer';
  const step = integer ? 1 : (schema.multipleOf ?? 0.01);
  const low = lowestValid(schema, step);
  const high = highestValid(schema, step);
  const isValid = (value: number) =>
    (low === undefined || value >= low) && (high === undefined || value <= high);
  const from = Math.max(low ?? 0, -1_000);
  const to = Math.min(high ?? 1_000, from + 1_000);
  const inRange = integer
    ? fc.integer({ min: Math.ceil(from), max: Math.max(Math.ceil(from), Math.floor(to)) })
    : fc
        .integer({ min: Math.ceil(from * 100), max: Math.max(Math.ceil(from * 100), Math.floor(to * 100)) })
        .map((cents) => cents / 100);
  const atBounds = [low, high].filter((value): value is number => value !== undefined);
  const beyondBounds = [
    ...(low === undefined ? [] : [low - step, low - step / 2]),
    ...(high === undefined ? [] : [high + step, high + step / 2]),
  ];
  const knownAndValid = known.ids.filter(isValid);
  return {
    valid: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...knownAndValid, from) },
      { weight: 2, arbitrary: inRange },
      { weight: 2, arbitrary: fc.constantFrom(...atBounds, from) },
    ),
    hostile: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...beyondBounds, ...HOSTILE_NUMBERS) },
      { weight: 1, arbitrary: fc.double() },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(...WRONG_TYPES, ...HOSTILE_TEXTS.slice(0, 18)) },
    ),
  };
}

function stringValues(schema: InputSchema, known: KnownValues): FieldValues {
  const minLength = schema.minLength ?? 0;
  const maxLength = schema.maxLength;
  const fits = (text: string) => text.length >= minLength && text.length <= (maxLength ?? 200);
  const shaped = schema.pattern
    ? fc.stringMatching(new RegExp(schema.pattern)).filter(fits)
    : fc.oneof(
        fc.string({ minLength, maxLength: Math.min(maxLength ?? 40, 40) }),
        fc.string({ unit: 'grapheme', minLength, maxLength: Math.min(maxLength ?? 20, 20) }).filter(fits),
      );
  const atBounds = [
    ...(maxLength === undefined ? [] : ['x'.repeat(maxLength), 'é'.repeat(maxLength)]),
    ...(minLength > 0 ? ['x'.repeat(minLength)] : []),
  ];
  const beyondBounds = [
    ...(maxLength === undefined ? [] : ['x'.repeat(maxLength + 1), '𝔠'.repeat(maxLength)]),
    ...(minLength > 0 ? ['x'.repeat(minLength - 1)] : []),
  ];
  const knownStrings = known.strings.filter(
    (text) => !schema.pattern || new RegExp(schema.pattern).test(text),
  );
  return {
    valid: fc.oneof(
      { weight: 3, arbitrary: shaped },
      { weight: 2, arbitrary: fc.constantFrom(...knownStrings, ...atBounds.filter(fits), 'x') },
    ),
    hostile: fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom(...beyondBounds, ...HOSTILE_TEXTS) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(...WRONG_TYPES, ...HOSTILE_NUMBERS) },
    ),
  };
}

function enumValues(schema: InputSchema): FieldValues {
  const values = schema.enum ?? [];
  const nearMisses = values.flatMap((value) =>
    typeof value === 'string' ? [value.toUpperCase(), `${value} `, `${value}\u0000`] : [],
  );
  return {
    valid: fc.constantFrom(...values),
    hostile: fc.constantFrom<unknown>(...nearMisses, ...HOSTILE_TEXTS, ...WRONG_TYPES, ...HOSTILE_NUMBERS),
  };
}

function objectValues(schema: InputSchema, known: KnownValues): FieldValues {
  const properties = Object.entries(schema.properties ?? {}).map(
    ([name, property]) => [name, valuesOf(property, known)] as const,
  );
  const required = (schema.required ?? []).filter((name) =>
    properties.some(([declared]) => declared === name),
  );
  const validRecord = fc.record(
    Object.fromEntries(properties.map(([name, values]) => [name, values.valid])),
    {
      requiredKeys: required,
    },
  );
  const anyRecord = fc.record(
    Object.fromEntries(
      properties.map(([name, values]) => [name, fc.oneof(values.valid, values.hostile)] as const),
    ),
    { requiredKeys: [] },
  );
  return {
    valid: validRecord,
    hostile: fc.oneof(
      { weight: 4, arbitrary: anyRecord },
      {
        weight: 1,
        arbitrary: fc
          .tuple(validRecord, fc.dictionary(fc.string({ maxLength: 10 }), anyJson, { maxKeys: 2 }))
          .map(([value, extra]) => ({ ...extra, ...value })),
      },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], 'x', 42) },
    ),
  };
}

/** The values of a field of a JSON body, or of a parameter before it is written as text. */
function valuesOf(schema: InputSchema | undefined, known: KnownValues): FieldValues {
  if (schema === undefined) return { valid: anyJson, hostile: anyJson };
  if (schema.anyOf) {
    const options = schema.anyOf.map((option) => valuesOf(option, known));
    return {
      valid: fc.oneof(...options.map(({ valid }) => valid)),
      hostile: fc.oneof(...options.map(({ hostile }) => hostile)),
    };
  }
  if (schema.enum) return enumValues(schema);
  switch (schema.type) {
    case 'integer':
    case 'number':
      return numberValues(schema, known);
    case 'string':
      return stringValues(schema, known);
    case 'object':
      return objectValues(schema, known);
    case 'array': {
      const items = valuesOf(schema.items, known);
      return {
        valid: fc.array(items.valid, { maxLength: 3 }),
        hostile: fc.oneof(fc.array(items.hostile, { minLength: 1, maxLength: 3 }), anyJson),
      };
    }
    default:
      return { valid: anyJson, hostile: anyJson };
  }
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Percent-encoded for a URL; a lone surrogate cannot be, it is sent as the replacement character. */
function encodeText(text: string): string {
  return encodeURIComponent(text.replaceAll(/\p{Surrogate}/gu, '\ufffd'));
}

/** What no encoder would send: bytes that are not UTF-8, a broken escape. */
const MALFORMED_ENCODINGS = ['%FF', '%ED%A0%80', '%C0%AF', '%', '%zz', '%00'];

/** The values of a path or query parameter, as percent-encoded text. */
function encodedTextValues(schema: InputSchema | undefined, known: KnownValues): FieldValues {
  const values = valuesOf(schema, known);
  return {
    valid: values.valid.map(asText).map(encodeText),
    hostile: fc.oneof(
      { weight: 6, arbitrary: values.hostile.map(asText).map(encodeText) },
      { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_TEXTS.map(encodeText)) },
      { weight: 1, arbitrary: fc.constantFrom(...MALFORMED_ENCODINGS) },
    ),
  };
}

/** Header values must be visible ASCII (fetch refuses anything else before sending). */
function headerValues(schema: InputSchema | undefined): FieldValues {
  const maxLength = Math.min(schema?.maxLength ?? 20, 20);
  return {
    valid: fc.stringMatching(new RegExp(`^[\\x21-\\x7e]{${schema?.minLength ?? 1},${maxLength}}$`)),
    hostile: fc.constantFrom('', 'x'.repeat(201), 'x'.repeat(5_000), '-1', '99999999999999999999', ' x '),
  };
}

const RAW_BODIES: GeneratedBody[] = [
  { kind: 'raw', text: '{"nom": ', contentType: 'application/json' },
  { kind: 'raw', text: '', contentType: 'application/json' },
  { kind: 'raw', text: 'null', contentType: 'application/json' },
  { kind: 'raw', text: '{"a":1}{', contentType: 'application/json' },
  { kind: 'raw', text: '{"quantite": 1e400}', contentType: 'application/json' },
  { kind: 'raw', text: '{"__proto__": {"x": 1}}', contentType: 'application/json' },
  { kind: 'raw', text: 'nom=x', contentType: 'application/x-www-form-urlencoded' },
  { kind: 'raw', text: 'x', contentType: 'text/plain' },
];

function parameterNames(url: string): string[] {
  return url
    .split('/')
    .filter((segment) => segment.startsWith(':') || segment === '*')
    .map((segment) => (segment === '*' ? '*' : segment.slice(1)));
}

/** Whether a route takes anything a caller chooses: parameters, a query or a body. */
export function takesInput(route: RouteInTable, operation: Operation | undefined): boolean {
  return (
    parameterNames(route.url).length > 0 ||
    (operation?.parameters ?? []).length > 0 ||
    operation?.requestBody !== undefined
  );
}

/** One thing a request carries: a parameter, a query key, a header, a property of the body. */
interface Slot {
  place: 'path' | 'query' | 'header' | 'body';
  name: string;
  values: FieldValues;
  /** Whether a valid request may leave it out. */
  optional: boolean;
}

/** How a request is made: all valid, one slot hostile (the usual case), every slot drawn either way. */
type Mix = 'all valid' | 'one hostile' | 'any';

function slotsOf(route: RouteInTable, operation: Operation | undefined, known: KnownValues): Slot[] {
  const declared = operation?.parameters ?? [];
  const schemaOf = (place: 'path' | 'query' | 'header', name: string) =>
    declared.find((parameter) => parameter.in === place && parameter.name === name)?.schema;
  const slots: Slot[] = parameterNames(route.url).map((name) => ({
    place: 'path',
    name,
    values: encodedTextValues(schemaOf('path', name), known),
    optional: false,
  }));
  for (const parameter of declared) {
    if (parameter.in === 'query') {
      slots.push({
        place: 'query',
        name: parameter.name,
        values: encodedTextValues(parameter.schema, known),
        optional: parameter.required !== true,
      });
    } else if (parameter.in === 'header') {
      slots.push({
        place: 'header',
        name: parameter.name,
        values: headerValues(parameter.schema),
        optional: parameter.required !== true,
      });
    }
  }
  const bodySchema = operation?.requestBody?.content['application/json']?.schema;
  if (bodySchema?.type === 'object' && bodySchema.properties) {
    for (const [name, property] of Object.entries(bodySchema.properties)) {
      slots.push({
        place: 'body',
        name,
        values: valuesOf(property, known),
        optional: !(bodySchema.required ?? []).includes(name),
      });
    }
  }
  return slots;
}

/** What replaces a whole body now and then: broken JSON, another content type, JSON of another shape. */
function strayBodies(route: RouteInTable, operation: Operation | undefined): fc.Arbitrary<GeneratedBody> {
  if (route.method === 'GET') return fc.constant({ kind: 'none' });
  return fc.oneof(
    fc.constantFrom(...RAW_BODIES, { kind: 'none' } as const),
    (operation?.requestBody ? fc.constantFrom<unknown>(null, [], 'x', 42, {}) : anyJson).map(
      (value): GeneratedBody => ({ kind: 'json', value }),
    ),
  );
}

/** A value of `arbitrary` with this probability, undefined otherwise. */
function now<T>(probability: number, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof(
    { weight: Math.round(1 / probability) - 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary },
  );
}

/**
 * Requests to one route, drawn from what it publishes: mostly valid requests with one parameter, query
 * key, header or body property at or beyond its bounds (or of another type), so that each refusal is
 * tried past the others; some all valid; some drawn at random; now and then a body that is not the JSON
 * the route takes, and a query key it does not know.
 */
export function requestsTo(
  route: RouteInTable,
  operation: Operation | undefined,
  known: KnownValues,
): fc.Arbitrary<GeneratedRequest> {
  const slots = slotsOf(route, operation, known);
  const drawnSlots = fc.tuple(
    ...slots.map((slot) =>
      fc.record({
        valid: slot.values.valid,
        hostile: slot.values.hostile,
        present: fc.boolean(),
        flip: fc.boolean(),
      }),
    ),
  );
  const mix = fc.constantFrom<Mix>(
    'all valid',
    'all valid',
    'one hostile',
    'one hostile',
    'one hostile',
    'any',
  );
  const strayQuery = now(
    1 / 6,
    fc.tuple(
      fc.constantFrom('limit', 'after', 'x', '__proto__', 'client_id'),
      fc.constantFrom(...HOSTILE_TEXTS.map(encodeText), '1'),
    ),
  );
  const bodyReplaced = now(1 / 8, strayBodies(route, operation));
  const hasJsonBody = operation?.requestBody !== undefined && route.method !== 'GET';

  return fc
    .record({ mix, target: fc.nat(), drawn: drawnSlots, strayQuery, bodyReplaced })
    .map(({ mix: chosenMix, target, drawn, strayQuery: stray, bodyReplaced: replacement }) => {
      const pathValues = new Map<string, string>();
      const query: [string, string][] = [];
      const headers: Record<string, string> = {};
      const body: Record<string, unknown> = {};
      slots.forEach((slot, index) => {
        const draw = drawn[index];
        if (!draw) return;
        const hostile =
          chosenMix === 'any' ? draw.flip : chosenMix === 'one hostile' && index === target % slots.length;
        if (!hostile && slot.optional && !draw.present) return;
        const value = hostile ? draw.hostile : draw.valid;
        if (slot.place === 'path') pathValues.set(slot.name, asText(value));
        else if (slot.place === 'query') {
          query.push([slot.name, asText(value)]);
          // A key given twice arrives as an array.
          if (hostile && draw.present && draw.flip) query.push([slot.name, asText(value)]);
        } else if (slot.place === 'header') headers[slot.name] = asText(value);
        else body[slot.name] = value;
      });
      if (stray) query.push(stray);
      const path = route.url
        .split('/')
        .map((segment) =>
          segment.startsWith(':') || segment === '*'
            ? (pathValues.get(segment === '*' ? '*' : segment.slice(1)) ?? '')
            : segment,
        )
        .join('/');
      const generatedBody: GeneratedBody =
        replacement ?? (hasJsonBody ? { kind: 'json', value: body } : { kind: 'none' });
      return { method: route.method, path, query, headers, body: generatedBody };
    });
}

/** `key=value&…`, the values already percent-encoded. */
export function queryString(query: [string, string][]): string {
  return query.map(([key, value]) => `${encodeURIComponent(key)}=${value}`).join('&');
}

/** The request as a line a reader can replay with curl. */
export function describeRequest(request: GeneratedRequest): string {
  const query = queryString(request.query);
  const body =
    request.body.kind === 'json'
      ? ` ${JSON.stringify(request.body.value)?.slice(0, 300)}`
      : request.body.kind === 'raw'
        ? ` (${request.body.contentType}) ${request.body.text.slice(0, 300)}`
        : '';
  const headers = Object.entries(request.headers)
    .map(([name, value]) => ` ${name}: ${value.slice(0, 60)}`)
    .join('');
  return `${request.method} ${request.path.slice(0, 300)}${query === '' ? '' : `?${query.slice(0, 300)}`}${headers}${body}`;
}
