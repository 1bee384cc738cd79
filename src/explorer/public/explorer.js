import { mountActors } from './actors-view.js';
import { callerOf } from './api.js';
import { mountDeadLetters } from './dead-letters-view.js';
import { mountDemo } from './demo-view.js';
import { h } from './dom.js';
import { mountOrder } from './order-view.js';
import { mountOrders } from './orders-view.js';
import { mountOverview } from './overview-view.js';
import { forgetToken, onSignedOut, savedToken } from './session.js';
import { mountSignIn } from './sign-in-view.js';

/** Hash routes: #/, #/orders?…, #/orders/<id>, #/dead-letters, #/actors, #/demo. */
function route(caller) {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'orders' && parts[1]) return { view: 'orders', mount: mountOrder, args: { id: parts[1] } };
  if (parts[0] === 'orders') return { view: 'orders', mount: mountOrders, args: { params } };
  const staffViews = { 'dead-letters': mountDeadLetters, actors: mountActors, demo: mountDemo };
  const staffView = parts[0] !== undefined && Object.hasOwn(staffViews, parts[0]) ? parts[0] : null;
  if (caller.role !== 'staff') {
    // A client's explorer is its orders: the overview and the other views show every client's activity.
    if (staffView === null) return { view: 'orders', mount: mountOrders, args: { params } };
    return { view: staffView, mount: mountStaffOnly, args: {} };
  }
  if (staffView === null) return { view: 'overview', mount: mountOverview, args: {} };
  return { view: staffView, mount: staffViews[staffView], args: {} };
}

/** What a client sees at a staff view's address: that it is not theirs, and the way to their orders. */
function mountStaffOnly(view, { caller }) {
  view.append(
    h('h1', { text: 'For staff only' }),
    h(
      'section',
      { class: 'panel' },
      h('p', {
        text: `You are signed in as client n°${caller.client_id}: this view is for choreo's staff. `,
      }),
      h('p', {}, h('a', { href: '#/orders', text: 'See your orders' })),
    ),
  );
}

let caller = null;
let unmount = null;
let generation = 0;

function clearView() {
  generation += 1;
  unmount?.();
  unmount = null;
  const view = document.getElementById('view');
  view.replaceChildren();
  return view;
}

/** The header says who is signed in, and offers only the views that caller may use. */
function showCaller() {
  const nav = document.querySelector('nav');
  const who = document.getElementById('who');
  nav.hidden = caller === null;
  who.hidden = caller === null;
  if (caller === null) return;
  for (const item of nav.querySelectorAll('li[data-for="staff"]')) item.hidden = caller.role !== 'staff';
  const name = document.getElementById('who-name');
  name.textContent = caller.role === 'staff' ? 'staff' : `client n°${caller.client_id}`;
  name.dataset.role = caller.role;
}

async function show() {
  if (caller === null) return;
  const current = route(caller);
  const view = clearView();
  const mine = generation;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === current.view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    const cleanup = await current.mount(view, { ...current.args, caller });
    if (mine === generation) unmount = cleanup;
    else cleanup?.();
  } catch (error) {
    if (mine !== generation) return;
    view.append(
      h('p', { class: 'message error', role: 'alert', text: `Could not show this view: ${error.message}` }),
    );
  }
}

function askForToken(notice) {
  caller = null;
  showCaller();
  const status = document.getElementById('live-status');
  status.dataset.state = 'signed-out';
  status.textContent = 'signed out';
  mountSignIn(clearView(), {
    notice,
    signedIn: (who) => {
      caller = who;
      showCaller();
      show();
    },
  });
}

async function start() {
  const token = savedToken();
  if (!token) {
    askForToken(null);
    return;
  }
  let who;
  try {
    who = await callerOf(token);
  } catch (error) {
    clearView().append(
      h('p', { class: 'message error', role: 'alert', text: `choreo does not answer: ${error.message}` }),
    );
    return;
  }
  if (who === null) {
    forgetToken();
    askForToken('Your token is no longer accepted: sign in again.');
    return;
  }
  caller = who;
  showCaller();
  show();
}

onSignedOut((message) => {
  if (caller !== null) askForToken(message);
});

document.getElementById('sign-out').addEventListener('click', () => {
  forgetToken();
  askForToken('Signed out: this tab no longer keeps a token.');
});

window.addEventListener('hashchange', () => {
  if (caller === null) return;
  show();
  document.getElementById('view').focus({ preventScroll: true });
});
start();
