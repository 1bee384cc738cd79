/**
 * Reads a server-sent event stream as EventSource would (the HTML standard's "interpreting an event
 * stream"), for a stream read with fetch, which, unlike EventSource, can send an Authorization header.
 * Feed it text as it arrives; it hands back each complete message.
 */
export class EventStreamParser {
  /** The last `id:` the stream set (sent back as Last-Event-ID when reconnecting). */
  lastEventId = '';
  /** The reconnection delay the stream asked for (`retry:`), or null. */
  retryMs = null;

  #pending = '';
  #started = false;
  #afterCarriageReturn = false;
  #event = '';
  #data = [];

  /** Takes the next piece of the stream; returns the messages it completed: { id, event, data }. */
  push(text) {
    if (text === '') return [];
    let input = text;
    // A \r ended the last piece's line: a \n starting this one is the rest of that line end.
    if (this.#afterCarriageReturn && input.startsWith('\n')) input = input.slice(1);
    this.#afterCarriageReturn = false;
    input = this.#pending + input;
    if (!this.#started && input.length > 0) {
      this.#started = true;
      if (input.startsWith('\uFEFF')) input = input.slice(1);
    }
    const messages = [];
    const lineEnd = /\r\n|\n|\r/g;
    let start = 0;
    for (let match = lineEnd.exec(input); match !== null; match = lineEnd.exec(input)) {
      const message = this.#line(input.slice(start, match.index));
      if (message) messages.push(message);
      start = match.index + match[0].length;
    }
    this.#afterCarriageReturn = start > 0 && start === input.length && input.endsWith('\r');
    this.#pending = input.slice(start);
    return messages;
  }

  #line(line) {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }

  #dispatch() {
    const event = this.#event || 'message';
    const data = this.#data;
    this.#event = '';
    this.#data = [];
    if (data.length === 0) return null;
    return { id: this.lastEventId, event, data: data.join('\n') };
  }
}
