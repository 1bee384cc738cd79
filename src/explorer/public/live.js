/**
 * The live feed: server-sent events from /api/explorer/live, read with fetch (EventSource cannot send the
 * Authorization header). Like EventSource it reconnects and sends Last-Event-ID (the last event position
 * seen), so the server resumes where it left; unlike it, it backs off while the server does not answer,
 * and stops for good when the token is refused (the page asks for one again).
 */
import { EventStreamParser } from './event-stream.js';
import { authorization, signedOut } from './session.js';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

function showStatus(state, text) {
  const element = document.getElementById('live-status');
  if (!element) return;
  element.dataset.state = state;
  element.textContent = text;
}

/**
 * Opens a feed. `options`: { changes: 'all' | 'none', commande, overview: boolean }.
 * `handlers`: { changes({ truncated, changes }), overview(reading), reset() }. Returns a close function.
 */
export function openLive(options, handlers) {
  const query = new URLSearchParams();
  if (options.commande) query.set('commande', options.commande);
  else query.set('changes', options.changes ?? 'none');
  query.set('overview', options.overview ? '1' : '0');
  const url = `/api/explorer/live?${query}`;

  let lastEventId = '';
  let serverRetryMs = FIRST_RETRY_MS;
  let failures = 0;
  let closed = false;
  let controller = null;
  let timer = null;

  function dispatch(message) {
    const handler = handlers[message.event];
    if (!handler) return;
    handler(JSON.parse(message.data));
  }

  async function connect() {
    controller = new AbortController();
    const headers = { accept: 'text/event-stream', ...authorization() };
    if (lastEventId !== '') headers['last-event-id'] = lastEventId;
    let response;
    try {
      response = await fetch(url, { headers, cache: 'no-store', signal: controller.signal });
    } catch {
      return reconnectLater();
    }
    if (response.status === 401) {
      closed = true;
      showStatus('signed-out', 'signed out');
      signedOut('Your token is no longer accepted: sign in again.');
      return;
    }
    if (response.status === 403 || response.status === 404) {
      closed = true;
      showStatus('closed', `not live (HTTP ${response.status})`);
      return;
    }
    if (!response.ok || !response.body) return reconnectLater();
    failures = 0;
    showStatus('live', 'live');
    const parser = new EventStreamParser();
    parser.lastEventId = lastEventId;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const message of parser.push(value)) dispatch(message);
        lastEventId = parser.lastEventId;
        if (parser.retryMs !== null) serverRetryMs = parser.retryMs;
      }
    } catch {
      // The connection broke (or was closed): reconnect below unless closed.
    }
    reconnectLater();
  }

  function reconnectLater() {
    if (closed) return;
    showStatus('reconnecting', 'reconnecting…');
    // The server's delay first, then doubling while it does not answer, up to half a minute.
    const delay = Math.min(MAX_RETRY_MS, serverRetryMs * 2 ** failures);
    failures += 1;
    timer = setTimeout(connect, delay * (0.8 + Math.random() * 0.4));
  }

  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    controller?.abort();
  };
}
