/**
 * The live feed: server-sent events from /api/explorer/live. The browser's EventSource reconnects by
 * itself and sends Last-Event-ID (the last event position seen), so the server resumes where it left.
 */

const status = () => document.getElementById('live-status');

function showStatus(state, text) {
  const element = status();
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
  const source = new EventSource(`/api/explorer/live?${query}`);
  source.addEventListener('open', () => showStatus('live', 'live'));
  source.addEventListener('error', () => showStatus('reconnecting', 'reconnecting…'));
  const on = (name, handler) => {
    if (!handler) return;
    source.addEventListener(name, (message) => handler(JSON.parse(message.data)));
  };
  on('changes', handlers.changes);
  on('overview', handlers.overview);
  on('reset', handlers.reset);
  return () => source.close();
}
