import { getJson, machinePicture } from './api.js';
import { fill, formatMoney, formatTime, h, statutBadge } from './dom.js';
import { openLive } from './live.js';

const LIMIT = 100;

/**
 * Every commande, newest first, following the event store live; filter by state, client, store, id. A
 * client sees its own commandes only (the API answers no other), so it has no client filter.
 */
export async function mountOrders(view, { params, caller }) {
  const picture = await machinePicture();
  const staff = caller.role === 'staff';
  const filters = {
    statut: params.get('statut') ?? '',
    client_id: staff ? (params.get('client_id') ?? '') : '',
    magasin_id: params.get('magasin_id') ?? '',
    q: params.get('q') ?? '',
  };
  const statut = h(
    'select',
    { name: 'statut' },
    h('option', { value: '', text: 'any state' }),
    picture.states.map((state) =>
      h('option', { value: state.key, text: state.key, selected: state.key === filters.statut }),
    ),
  );
  const client = h('input', {
    name: 'client_id',
    type: 'number',
    min: 1,
    inputmode: 'numeric',
    value: filters.client_id,
    size: 6,
  });
  const magasin = h('input', {
    name: 'magasin_id',
    type: 'number',
    min: 1,
    inputmode: 'numeric',
    value: filters.magasin_id,
    size: 6,
  });
  const search = h('input', { name: 'q', type: 'search', value: filters.q, placeholder: 'cmd-…', size: 28 });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter the orders' },
    h('label', {}, 'State', statut),
    staff ? h('label', {}, 'Client id', client) : null,
    h('label', {}, 'Store id', magasin),
    h('label', {}, 'Order id contains', search),
    h('button', { type: 'submit', text: 'Filter' }),
    h('button', {
      type: 'button',
      class: 'secondary',
      text: 'Clear',
      onclick: () => (location.hash = '#/orders'),
    }),
  );
  const summary = h('p', { class: 'sub', 'aria-live': 'polite' });
  const body = h('tbody');
  const table = h(
    'table',
    { 'aria-label': 'Orders, newest first' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['order', 'state', 'client', 'store', 'total', 'created', 'last change'].map((name, index) =>
          h('th', { class: index === 4 ? 'num' : null, text: name }),
        ),
      ),
    ),
    body,
  );
  view.append(
    h('h1', { text: staff ? 'Orders' : `Your orders, client n°${caller.client_id}` }),
    h('section', { class: 'panel' }, form, summary, table),
  );

  const apply = (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of [
      ['statut', statut.value],
      ['client_id', client.value],
      ['magasin_id', magasin.value],
      ['q', search.value.trim()],
    ]) {
      if (value) query.set(name, value);
    }
    location.hash = `#/orders${query.size > 0 ? `?${query}` : ''}`;
  };
  form.addEventListener('submit', apply);
  statut.addEventListener('change', apply);

  const rows = new Map();
  const matches = (order) =>
    (!filters.statut || order.statut === filters.statut) &&
    (!filters.client_id || String(order.client_id) === filters.client_id) &&
    (!filters.magasin_id || String(order.magasin_id) === filters.magasin_id) &&
    (!filters.q || order.commande_id.toLowerCase().includes(filters.q.toLowerCase()));

  function rowOf(order) {
    const row = h(
      'tr',
      { 'data-commande': order.commande_id, 'data-statut': order.statut },
      h(
        'td',
        {},
        h('a', {
          class: 'mono',
          href: `#/orders/${encodeURIComponent(order.commande_id)}`,
          text: order.commande_id,
        }),
      ),
      h('td', { class: 'statut-cell' }, statutBadge(order.statut, picture)),
      h(
        'td',
        {},
        h('a', {
          href: `#/orders?client_id=${order.client_id}`,
          'aria-label': `Orders of client ${order.client_id}`,
          text: order.client_id,
        }),
      ),
      h(
        'td',
        {},
        h('a', {
          href: `#/orders?magasin_id=${order.magasin_id}`,
          'aria-label': `Orders of store ${order.magasin_id}`,
          text: order.magasin_id,
        }),
      ),
      h('td', { class: 'num', text: order.total === null ? '—' : formatMoney(order.total) }),
      h('td', { text: formatTime(order.created_at) }),
      h('td', { class: 'updated', text: formatTime(order.updated_at) }),
    );
    return row;
  }

  function updateSummary() {
    summary.textContent =
      rows.size === 0
        ? 'No order matches.'
        : `${rows.size} most recent order${rows.size === 1 ? '' : 's'} shown, live.`;
  }

  let loading = null;
  async function load() {
    const query = new URLSearchParams({ limit: String(LIMIT) });
    for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
    const orders = await getJson(`/api/explorer/commandes?${query}`);
    rows.clear();
    fill(
      body,
      orders.map((order) => {
        const row = rowOf(order);
        rows.set(order.commande_id, row);
        return row;
      }),
    );
    updateSummary();
  }
  function reload() {
    loading ??= load().finally(() => {
      loading = null;
    });
    return loading;
  }

  // At most one reload a second when the live changes cannot be applied in place.
  let reloadTimer = null;
  function reloadSoon() {
    reloadTimer ??= setTimeout(() => {
      reloadTimer = null;
      reload();
    }, 1_000);
  }

  function onChanges({ truncated, changes }) {
    if (truncated) {
      reloadSoon();
      return;
    }
    for (const change of changes) {
      const row = rows.get(change.commande_id);
      if (change.event_type === 'CommandeCreee' && !row) {
        const order = {
          commande_id: change.commande_id,
          statut: change.statut,
          client_id: change.client_id,
          magasin_id: change.magasin_id,
          total: change.total,
          created_at: change.timestamp,
          updated_at: change.timestamp,
        };
        if (!matches(order)) continue;
        const added = rowOf(order);
        added.classList.add('flash');
        body.prepend(added);
        rows.set(order.commande_id, added);
        while (rows.size > LIMIT) {
          const last = body.lastElementChild;
          rows.delete(last.dataset.commande);
          last.remove();
        }
      } else if (!row && filters.statut && change.statut === filters.statut) {
        reloadSoon();
      } else if (row && change.statut) {
        if (filters.statut && change.statut !== filters.statut) {
          rows.delete(change.commande_id);
          row.remove();
          continue;
        }
        row.dataset.statut = change.statut;
        fill(row.querySelector('.statut-cell'), statutBadge(change.statut, picture));
        row.querySelector('.updated').textContent = formatTime(change.timestamp);
        row.classList.remove('flash');
        void row.offsetWidth;
        row.classList.add('flash');
      }
    }
    updateSummary();
  }

  await reload();
  const close = openLive({ changes: 'all', overview: false }, { changes: onChanges, reset: reloadSoon });
  return () => {
    clearTimeout(reloadTimer);
    close();
  };
}
