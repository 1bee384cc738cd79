import { describe, expect, it } from 'vitest';

/** The page's parser (a plain browser module, served as it is): what this test relies on. */
interface StreamMessage {
  id: string;
  event: string;
  data: string;
}
interface EventStreamParser {
  lastEventId: string;
  retryMs: number | null;
  push(text: string): StreamMessage[];
}

const modulePath = './public/event-stream.js';
const { EventStreamParser: Parser } = (await import(modulePath)) as {
  EventStreamParser: new () => EventStreamParser;
};

/** Everything the parser hands back when the stream arrives in the given pieces. */
function parse(pieces: readonly string[]): { messages: StreamMessage[]; parser: EventStreamParser } {
  const parser = new Parser();
  const messages = pieces.flatMap((piece) => parser.push(piece));
  return { messages, parser };
}

/** Every way of cutting `text` in two. */
function cutsOf(text: string): string[][] {
  return Array.from({ length: text.length + 1 }, (_, at) => [text.slice(0, at), text.slice(at)]);
}

describe("the explorer's event stream parser", () => {
  const stream = [
    'retry: 1000',
    '',
    'id: 41',
    'event: hello',
    'data: {"position":41}',
    '',
    ': keep-alive',
    '',
    'id: 45',
    'event: changes',
    'data: {"a":',
    'data: 1}',
    '',
    'event: overview',
    'data: {}',
    '',
    '',
  ].join('\n');
  const expected: StreamMessage[] = [
    { id: '41', event: 'hello', data: '{"position":41}' },
    { id: '45', event: 'changes', data: '{"a":\n1}' },
    { id: '45', event: 'overview', data: '{}' },
  ];

  it('reads messages whatever the pieces the network cuts the stream into', () => {
    for (const pieces of cutsOf(stream)) {
      const { messages, parser } = parse(pieces);
      expect(messages).toEqual(expected);
      expect(parser.lastEventId).toBe('45');
      expect(parser.retryMs).toBe(1000);
    }
    expect(parse(stream.split('')).messages).toEqual(expected);
  });

  it('takes \\r\\n and \\r as line ends, even when a \\r\\n is cut in two', () => {
    for (const end of ['\r\n', '\r']) {
      const text = stream.replaceAll('\n', end);
      for (const pieces of cutsOf(text)) expect(parse(pieces).messages).toEqual(expected);
      expect(parse(text.split('').flatMap((character) => [character, ''])).messages).toEqual(expected);
    }
  });

  it('skips a leading byte order mark, dispatches nothing without data, and ignores unknown fields', () => {
    const { messages, parser } = parse([
      '\uFEFFdata: first\n\n',
      'event: empty\n\n',
      'id\nfoo: bar\ndata\n\n',
      'retry: soon\ndata:x\n\n',
    ]);
    expect(messages).toEqual([
      { id: '', event: 'message', data: 'first' },
      { id: '', event: 'message', data: '' },
      { id: '', event: 'message', data: 'x' },
    ]);
    expect(parser.retryMs).toBeNull();
  });

  it('holds an unfinished message until its blank line comes', () => {
    const parser = new Parser();
    expect(parser.push('id: 7\nevent: changes\ndata: {}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ id: '7', event: 'changes', data: '{}' }]);
  });
});
