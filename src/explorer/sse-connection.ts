import type { ServerResponse } from 'node:http';

/** Past this much unsent output, a browser that does not keep up is skipped until it drains. */
const MAX_BUFFERED_BYTES = 256 * 1024;
const KEEP_ALIVE_MS = 15_000;

/**
 * One browser's server-sent event stream. Bounded: what it cannot take (its socket's buffer past
 * MAX_BUFFERED_BYTES) is dropped, and the connection remembers it fell behind, so that the feed tells the
 * page to reload what it shows instead of showing a partial story.
 */
export class SseConnection {
  private fellBehind = false;
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly response: ServerResponse,
    onClose: () => void,
  ) {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Reconnect quickly after a restart of this process.
    response.write('retry: 1000\n\n');
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    response.on('close', () => {
      this.closed = true;
      clearInterval(this.keepAlive);
      onClose();
    });
  }

  /** Whether messages were dropped since the last call (and forgets it). */
  takeFellBehind(): boolean {
    const behind = this.fellBehind;
    this.fellBehind = false;
    return behind;
  }

  get congested(): boolean {
    return this.response.writableLength > MAX_BUFFERED_BYTES;
  }

  /** Sends one message (`data` already JSON); false, and the message dropped, when the browser lags. */
  send(event: string, data: string, id?: number): boolean {
    if (this.closed) return false;
    if (this.congested) {
      this.fellBehind = true;
      return false;
    }
    const idLine = id === undefined ? '' : `id: ${id}\n`;
    this.write(`${idLine}event: ${event}\ndata: ${data}\n\n`);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    this.response.end();
  }

  private write(text: string): void {
    if (!this.closed) this.response.write(text);
  }
}
