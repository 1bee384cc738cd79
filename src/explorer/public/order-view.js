import { getJson, machinePicture } from './api.js';
import { fill, formatMoney, formatMs, formatTime, h, statutBadge } from './dom.js';
import { openLive } from './live.js';
import { drawMachine, machineLegend, transitionKey } from './machine.js';

/** The states and transitions replaying the history up to `index` goes through (server-computed fold). */
function pathUpTo(history, index) {
  const states = [];
  const transitions = [];
  let previous = null;
  for (const step of history.slice(0, index + 1)) {
    if (step.statut === null) continue;
    if (!states.includes(step.statut)) states.push(step.statut);
    if (previous !== null && step.accepted && previous !== step.statut) {
      transitions.push(transitionKey(previous, step.event_type, step.statut));
    }
    previous = step.statut;
  }
  return { current: previous, states, transitions };
}

function isTyping(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName))
  );
}

/** One commande: its machine with the path it took, its events, its projection; step through its history. */
export async function mountOrder(view, { id }) {
  const picture = await machinePicture();
  const historyUrl = `/api/explorer/commandes/${encodeURIComponent(id)}/historique`;
  const heading = h('h1', {}, 'Order ', h('span', { class: 'mono', text: id }));
  const back = h('p', {}, h('a', { href: '#/orders', text: '← all orders' }));
  let history;
  try {
    history = await getJson(historyUrl);
  } catch (error) {
    // An unknown order, or another client's (which answers the same): nothing to draw or follow.
    view.append(heading, back, h('p', { class: 'message error', role: 'alert', text: error.message }));
    return undefined;
  }
  const facts = h('dl', { class: 'facts' });
  const stepInfo = h('p', { class: 'sub', 'aria-live': 'polite', id: 'step-info' });
  const previousButton = h('button', {
    type: 'button',
    class: 'secondary',
    'aria-label': 'Previous event',
    text: '◀ previous',
  });
  const nextButton = h('button', {
    type: 'button',
    class: 'secondary',
    'aria-label': 'Next event',
    text: 'next ▶',
  });
  const latestButton = h('button', {
    type: 'button',
    class: 'secondary',
    'aria-label': 'Latest event (follow live)',
    text: 'latest',
  });
  const machinePanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'order-machine-title' },
    h('h2', { id: 'order-machine-title', text: 'Its machine' }),
  );
  const timelineBody = h('tbody');
  const projection = h('div');
  const projectionPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'facts-title' },
    h('h2', { id: 'facts-title', text: 'Its projection (read model)' }),
    facts,
    projection,
  );
  const timelinePanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title', text: 'Its events' }),
    h('p', {
      class: 'sub',
      text: 'Pick an event, or use ← and → (Home, End): the machine shows the state replaying up to it gives, with the fold the saga itself uses.',
    }),
    h('div', { class: 'stepper' }, previousButton, nextButton, latestButton, stepInfo),
    h(
      'div',
      { class: 'scroll-x' },
      h(
        'table',
        { class: 'timeline', 'aria-label': 'Events of this order, oldest first' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['v', 'event', 'position', 'source', 'time', 'since previous', 'caused by', 'state after'].map(
              (name) => h('th', { text: name }),
            ),
          ),
        ),
        timelineBody,
      ),
    ),
  );
  view.append(heading, back, machinePanel, h('div', { class: 'grid-2' }, timelinePanel, projectionPanel));
  const machine = drawMachine(machinePanel, picture, {
    title: `The order machine, with the state of order ${id}`,
  });
  machinePanel.append(machineLegend(picture, { withHighlight: true }));
  machine.setCounts(null);

  let selected = null; // null: the latest event, following live

  function select(index) {
    selected = index === null || index >= history.length - 1 ? null : Math.max(0, index);
    render();
  }

  function render() {
    const index = selected ?? history.length - 1;
    const path = pathUpTo(history, index);
    machine.highlight(path);
    machine.svg.setAttribute(
      'aria-label',
      `The order machine: order ${id} ${selected === null ? 'is' : 'was'} in ${path.current ?? 'no state'}`,
    );
    [...timelineBody.children].forEach((row, rowIndex) => {
      if (rowIndex === index) row.setAttribute('aria-current', 'step');
      else row.removeAttribute('aria-current');
    });
    const step = history[index];
    stepInfo.textContent = step
      ? `Event ${index + 1} of ${history.length} (${step.event_type}): ${path.current}${selected === null ? ' — following live' : ''}`
      : '';
    previousButton.disabled = index <= 0;
    nextButton.disabled = index >= history.length - 1;
    latestButton.disabled = selected === null;
  }

  function renderTimeline() {
    fill(
      timelineBody,
      history.map((step, index) => {
        const cause =
          step.caused_by_version === null
            ? null
            : history.find((candidate) => candidate.version === step.caused_by_version);
        const causeCell = cause
          ? h(
              'button',
              {
                type: 'button',
                class: 'link',
                'aria-label': `Go to the cause: event ${cause.version}, ${cause.event_type}`,
                onclick: (event) => {
                  event.stopPropagation();
                  select(history.indexOf(cause));
                },
              },
              `v${cause.version} ${cause.event_type}`,
            )
          : h('span', { class: 'sub', text: step.causation_id ? step.causation_id.slice(0, 8) : '—' });
        const row = h(
          'tr',
          {
            tabindex: 0,
            class: step.accepted ? null : 'refused',
            'data-event-type': step.event_type,
            'aria-label': `Event ${step.version}: ${step.event_type}`,
            onclick: () => select(index),
            onkeydown: (event) => {
              if (event.key === 'Enter' || event.key === ' ') {
                event.preventDefault();
                select(index);
              }
            },
          },
          h('td', { class: 'num', text: step.version }),
          h('td', { class: 'mono', text: step.event_type }),
          h('td', { class: 'num', text: step.position }),
          h('td', { class: 'mono', text: step.source }),
          h('td', { text: formatTime(step.timestamp) }),
          h('td', {
            class: 'num',
            text: step.since_previous_ms === null ? '—' : `+${formatMs(step.since_previous_ms)}`,
          }),
          h('td', {}, causeCell),
          h(
            'td',
            {},
            step.statut === null ? '—' : statutBadge(step.statut, picture),
            step.accepted ? null : h('span', { class: 'sub', text: ' (refused)' }),
          ),
        );
        return row;
      }),
    );
  }

  async function renderProjection() {
    try {
      const commande = await getJson(`/api/commandes/${encodeURIComponent(id)}`);
      fill(
        facts,
        h('dt', { text: 'state' }),
        h('dd', { 'data-testid': 'projection-statut' }, statutBadge(commande.statut, picture)),
        h('dt', { text: 'reason' }),
        h('dd', { text: commande.raison ?? '—' }),
        h('dt', { text: 'client' }),
        h(
          'dd',
          {},
          h('a', { href: `#/orders?client_id=${commande.client_id}`, text: `client ${commande.client_id}` }),
        ),
        h('dt', { text: 'store' }),
        h(
          'dd',
          {},
          h('a', {
            href: `#/orders?magasin_id=${commande.magasin_id}`,
            text: `store ${commande.magasin_id}`,
          }),
        ),
        h('dt', { text: 'total' }),
        h('dd', { text: formatMoney(commande.total) }),
      );
      fill(
        projection,
        h(
          'table',
          { 'aria-label': 'Products of this order' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { text: 'product' }),
              h('th', { class: 'num', text: 'quantity' }),
              h('th', { class: 'num', text: 'unit price' }),
              h('th', { class: 'num', text: 'subtotal' }),
            ),
          ),
          h(
            'tbody',
            {},
            commande.produits.map((line) =>
              h(
                'tr',
                {},
                h('td', { text: line.produit_id }),
                h('td', { class: 'num', text: line.quantite }),
                h('td', { class: 'num', text: formatMoney(line.prix_unitaire) }),
                h('td', { class: 'num', text: formatMoney(line.sous_total) }),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      fill(facts, h('p', { class: 'sub', text: `Not in the read model yet (${error.message}).` }));
    }
  }

  let refreshing = null;
  async function refresh() {
    refreshing ??= (async () => {
      history = await getJson(historyUrl);
      renderTimeline();
      render();
      await renderProjection();
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  previousButton.addEventListener('click', () => select((selected ?? history.length - 1) - 1));
  nextButton.addEventListener('click', () => select((selected ?? history.length - 1) + 1));
  latestButton.addEventListener('click', () => select(null));
  const onKey = (event) => {
    if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    const index = selected ?? history.length - 1;
    const inTimeline = timelineBody.contains(event.target);
    // Left and right step anywhere on the page; up, down, Home and End only in the timeline (else they scroll).
    const moves = inTimeline
      ? {
          ArrowLeft: index - 1,
          ArrowUp: index - 1,
          ArrowRight: index + 1,
          ArrowDown: index + 1,
          Home: 0,
          End: null,
        }
      : { ArrowLeft: index - 1, ArrowRight: index + 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(moves[event.key]);
    timelineBody.children[selected ?? history.length - 1]?.focus({ preventScroll: false });
  };
  document.addEventListener('keydown', onKey);

  renderTimeline();
  render();
  await renderProjection();
  const close = openLive(
    { commande: id, overview: false },
    { changes: () => refresh(), reset: () => refresh() },
  );
  return () => {
    close();
    document.removeEventListener('keydown', onKey);
  };
}
