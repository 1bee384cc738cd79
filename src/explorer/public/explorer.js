import { mountActors } from './actors-view.js';
import { mountDeadLetters } from './dead-letters-view.js';
import { mountDemo } from './demo-view.js';
import { h } from './dom.js';
import { mountOrder } from './order-view.js';
import { mountOrders } from './orders-view.js';
import { mountOverview } from './overview-view.js';

/** Hash routes: #/, #/orders?…, #/orders/<id>, #/dead-letters, #/actors, #/demo. */
function route() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'orders' && parts[1]) return { view: 'orders', mount: mountOrder, args: { id: parts[1] } };
  if (parts[0] === 'orders') return { view: 'orders', mount: mountOrders, args: { params } };
  if (parts[0] === 'dead-letters') return { view: 'dead-letters', mount: mountDeadLetters, args: {} };
  if (parts[0] === 'actors') return { view: 'actors', mount: mountActors, args: {} };
  if (parts[0] === 'demo') return { view: 'demo', mount: mountDemo, args: {} };
  return { view: 'overview', mount: mountOverview, args: {} };
}

let unmount = null;
let generation = 0;

async function show() {
  const current = route();
  const mine = ++generation;
  unmount?.();
  unmount = null;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === current.view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = document.getElementById('view');
  view.replaceChildren();
  try {
    const cleanup = await current.mount(view, current.args);
    if (mine === generation) unmount = cleanup;
    else cleanup?.();
  } catch (error) {
    view.append(
      h('p', { class: 'message error', role: 'alert', text: `Could not show this view: ${error.message}` }),
    );
  }
}

window.addEventListener('hashchange', () => {
  show();
  document.getElementById('view').focus({ preventScroll: true });
});
show();
