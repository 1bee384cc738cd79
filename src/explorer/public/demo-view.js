import { getJson, postJson } from './api.js';
import { fill, h } from './dom.js';

const POLL_MS = 500;

/** Sends checkouts at a chosen rate for a bounded time (seeding a demo shop first), with its progress. */
export async function mountDemo(view) {
  const rate = h('input', {
    type: 'number',
    name: 'rate',
    min: 0.5,
    max: 200,
    step: 0.5,
    value: 20,
    required: true,
  });
  const seconds = h('input', {
    type: 'number',
    name: 'seconds',
    min: 1,
    max: 600,
    step: 1,
    value: 30,
    required: true,
  });
  const start = h('button', { type: 'submit', text: 'Start the demo load' });
  const stop = h('button', { type: 'button', class: 'secondary', text: 'Stop' });
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  const progress = h('div');
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Demo load' },
    h('label', {}, 'Checkouts per second', rate),
    h('label', {}, 'For (seconds)', seconds),
    start,
    stop,
  );
  view.append(
    h('h1', { text: 'Demo load' }),
    h(
      'section',
      { class: 'panel' },
      h('p', {
        class: 'sub',
        text: 'Seeds a small shop if there is none (one store, a product in plenty, one out of stock, 16 clients who can pay and 4 who cannot), then sends checkouts: 80 % succeed, 10 % find no stock, 10 % cannot pay. The same as `npm run demo` in a terminal. Watch them on the Overview and Orders views.',
      }),
      form,
      message,
      progress,
    ),
  );

  function render(state) {
    const sent = state.sent.succes + state.sent.stock_insuffisant + state.sent.solde_insuffisant;
    const running = state.state === 'running' || state.state === 'seeding';
    start.disabled = running;
    stop.disabled = !running;
    fill(
      progress,
      state.state === 'idle'
        ? h('p', { class: 'empty', text: 'No demo load has run in this process yet.' })
        : [
            h(
              'p',
              { 'data-testid': 'demo-state' },
              h('strong', { text: state.state }),
              ` — ${sent} of ${state.planned} checkouts sent at ${state.rate}/s for ${state.seconds} s${state.seeded ? ' (demo shop seeded)' : ''}`,
            ),
            h('progress', { max: Math.max(1, state.planned), value: sent, 'aria-label': 'Checkouts sent' }),
            h('p', {
              class: 'sub',
              text: `succeeding ${state.sent.succes} · no stock ${state.sent.stock_insuffisant} · cannot pay ${state.sent.solde_insuffisant} · skipped ${state.skipped} · errors ${state.errors}`,
            }),
            state.last_error ? h('p', { class: 'message error', text: state.last_error }) : null,
            state.magasin_id
              ? h(
                  'p',
                  {},
                  h('a', {
                    href: `#/orders?magasin_id=${state.magasin_id}`,
                    text: 'See the demo store’s orders',
                  }),
                  ' · ',
                  h('a', { href: '#/', text: 'the overview' }),
                )
              : null,
          ],
    );
    return running;
  }

  let timer = null;
  async function poll() {
    const running = render(await getJson('/api/demo'));
    clearTimeout(timer);
    if (running) timer = setTimeout(() => poll().catch(() => {}), POLL_MS);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      render(await postJson('/api/demo', { rate: Number(rate.value), seconds: Number(seconds.value) }));
      fill(message);
    } catch (error) {
      fill(message, h('p', { class: 'message error', role: 'alert', text: error.message }));
    }
    await poll();
  });
  stop.addEventListener('click', async () => {
    render(await postJson('/api/demo/stop'));
  });

  await poll();
  return () => clearTimeout(timer);
}
