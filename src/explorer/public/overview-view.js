import { machinePicture } from './api.js';
import { fill, formatMs, formatRate, formatTime, h, statutBadge, svgElement } from './dom.js';
import { openLive } from './live.js';
import { drawMachine, machineLegend } from './machine.js';

const OUTCOMES = ['vente_confirmee', 'stock_indisponible', 'annulee'];

function sparkline(values, colour) {
  const max = Math.max(1, ...values);
  const svg = svgElement('svg', {
    class: 'spark',
    viewBox: `0 0 ${values.length} 20`,
    preserveAspectRatio: 'none',
    'aria-hidden': 'true',
  });
  const points = values.map((value, index) => `${index},${20 - (value / max) * 18}`).join(' ');
  svg.append(
    svgElement('polyline', {
      points,
      fill: 'none',
      stroke: colour,
      'stroke-width': 1.2,
      'vector-effect': 'non-scaling-stroke',
    }),
  );
  return svg;
}

/** The order machine alive: counts, traffic, completions, latency, lag, dead letters and the audit. */
export async function mountOverview(view) {
  const picture = await machinePicture();
  const completions = h('ul', { class: 'rates' });
  const latency = h('div');
  const deadLetters = h('div');
  const audit = h('div');
  const groups = h('div');
  const updated = h('p', { class: 'sub', 'aria-live': 'off' });
  const machinePanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'machine-title' },
    h('h2', { id: 'machine-title', text: 'The order machine, live' }),
  );
  view.append(
    h('h1', { text: 'Overview' }),
    h(
      'div',
      { class: 'cards' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'c-completions' },
        h('h2', { id: 'c-completions', text: 'Completed / s (last 10 s)' }),
        completions,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'c-latency' },
        h('h2', { id: 'c-latency', text: 'Checkout → final (last 5 min)' }),
        latency,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'c-dead' },
        h('h2', { id: 'c-dead', text: 'Dead letters' }),
        deadLetters,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'c-audit' },
        h('h2', { id: 'c-audit', text: 'Conservation audit' }),
        audit,
      ),
    ),
    machinePanel,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'groups-title' },
      h('h2', { id: 'groups-title', text: 'Consumer groups' }),
      groups,
    ),
    updated,
  );
  const machine = drawMachine(machinePanel, picture, {
    title: 'The order machine with the number of commandes in each state',
  });
  machinePanel.append(machineLegend(picture, { withHighlight: false }));
  machine.setCounts(null);

  function render(reading) {
    machine.setCounts(reading.states);
    machine.setTraffic(reading.traffic.transitionsLastMinute);
    fill(
      completions,
      OUTCOMES.map((outcome) => {
        const state = picture.states.find((candidate) => candidate.key === outcome);
        const colour = picture.kinds[state?.kind ?? 'en_cours'].stroke;
        return h(
          'li',
          { 'data-outcome': outcome },
          h('span', {
            class: 'rate-value',
            text: formatRate(reading.traffic.completionsPerSecond[outcome] ?? 0),
          }),
          statutBadge(outcome, picture),
          sparkline(reading.traffic.completionsLastMinute[outcome] ?? [], colour),
        );
      }),
    );
    const { p50, p99, samples } = reading.traffic.latencyMs;
    fill(
      latency,
      h('div', { class: 'big' }, h('span', { text: `p50 ${formatMs(p50)}` })),
      h('div', { class: 'sub', text: `p99 ${formatMs(p99)} · ${samples} order${samples === 1 ? '' : 's'}` }),
    );
    fill(
      deadLetters,
      h('div', { class: 'big', 'data-testid': 'dead-letter-count', text: reading.deadLetters ?? '—' }),
      h('a', { href: '#/dead-letters', text: 'See and re-drive them' }),
    );
    const verdict = reading.audit;
    fill(
      audit,
      verdict === null
        ? h('div', { class: 'sub', text: 'checking…' })
        : [
            h('div', {
              class: `big ${verdict.ok ? 'verdict-ok' : 'verdict-bad'}`,
              text: verdict.ok ? '✔ conserved' : '✘ discrepancies',
            }),
            h('div', {
              class: 'sub',
              text: `stock ${verdict.stock_ecarts} · money ${verdict.argent_ecarts} off · ${verdict.en_cours} of ${verdict.commandes} orders in flight · at ${formatTime(verdict.checked_at)}`,
            }),
          ],
    );
    fill(
      groups,
      reading.groups.length === 0
        ? h('p', { class: 'empty', text: 'No reading of the consumer groups yet.' })
        : h(
            'table',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { text: 'stream' }),
                h('th', { text: 'group' }),
                h('th', { class: 'num', text: 'lag (not yet delivered)' }),
                h('th', { class: 'num', text: 'pending (delivered, not acknowledged)' }),
              ),
            ),
            h(
              'tbody',
              {},
              reading.groups.map((group) =>
                h(
                  'tr',
                  {},
                  h('td', { class: 'mono', text: group.stream }),
                  h('td', { class: 'mono', text: group.group }),
                  h('td', { class: 'num', text: group.lag ?? '—' }),
                  h('td', { class: 'num', text: group.pending ?? '—' }),
                ),
              ),
            ),
          ),
    );
    updated.textContent = `Updated ${formatTime(reading.at)} · event store position ${reading.position}`;
  }

  return openLive({ changes: 'none', overview: true }, { overview: render });
}
