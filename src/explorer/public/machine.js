import { h, svgElement } from './dom.js';

/** `source --Event--> target`, as the server keys transitions (machine-transitions.ts). */
export function transitionKey(source, eventType, target) {
  return `${source} --${eventType}--> ${target}`;
}

const KIND_LABELS = {
  en_cours: 'in progress (en cours)',
  succes: 'success (succès)',
  echec: 'failure (échec)',
  compensation: 'compensation',
};

/**
 * Draws the order machine (the server's Graphviz SVG of its definition) into `container`, and returns
 * what the views change on it: counts per state, traffic per transition, a highlighted state and path.
 */
export function drawMachine(container, picture, { title }) {
  const figure = h('figure', { class: 'machine', role: 'group', 'aria-label': title });
  figure.innerHTML = picture.svg;
  const svg = figure.querySelector('svg');
  svg.removeAttribute('width');
  svg.removeAttribute('height');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  container.append(figure);
  // The diagram's own key (its graph label) and background give way to the page's legend and panel.
  const graph = svg.querySelector('g.graph');
  for (const child of [...(graph?.children ?? [])]) {
    const kept =
      child.tagName === 'title' || child.classList.contains('node') || child.classList.contains('edge');
    if (!kept) child.remove();
  }
  const box = svg.getBBox();
  svg.setAttribute('viewBox', `${box.x - 12} ${box.y - 16} ${box.width + 24} ${box.height + 28}`);

  const nodes = new Map();
  for (const group of svg.querySelectorAll('g.node')) {
    const key = group.querySelector('title')?.textContent ?? '';
    const state = picture.states.find((candidate) => candidate.key === key);
    if (!state) continue;
    group.setAttribute('data-state', key);
    nodes.set(key, { group, state, shapes: [...group.querySelectorAll('path, polygon, ellipse')] });
  }
  const edges = new Map();
  for (const group of svg.querySelectorAll('g.edge')) {
    const [source, target] = (group.querySelector('title')?.textContent ?? '').split('->');
    const label = group.querySelector('text');
    const eventType = label?.textContent.trim() ?? '';
    if (source === '[*]') continue;
    edges.set(transitionKey(source, eventType, target), { group, label });
  }

  const badges = new Map();
  for (const [key, node] of nodes) {
    const box = node.shapes[0].getBBox();
    const badge = svgElement('g', { class: 'count-badge zero', 'aria-hidden': 'true' });
    const rect = svgElement('rect', { rx: 9, ry: 9, height: 18 });
    const text = svgElement('text', {
      class: 'count',
      'text-anchor': 'middle',
      'dominant-baseline': 'central',
    });
    badge.append(rect, text);
    node.group.append(badge);
    badges.set(key, { badge, rect, text, box });
  }
  // Each transition's "n/min" goes under its event's name, or above it where that would run into another
  // transition's name or count (edges close together: StockReserve over StockIndisponible, PaiementAccepte
  // over PaiementRefuse). Placed once, measured with the widest count it is likely to show.
  const traffic = new Map();
  const labelBoxes = new Map();
  for (const [key, edge] of edges) if (edge.label) labelBoxes.set(key, edge.label.getBBox());
  const placedBoxes = [];
  for (const [key, edge] of edges) {
    const own = labelBoxes.get(key);
    if (!own) continue;
    const text = svgElement('text', {
      class: 'traffic',
      x: Number(edge.label.getAttribute('x')),
      'text-anchor': 'middle',
      fill: edge.label.getAttribute('fill') ?? '#555',
    });
    edge.group.append(text);
    text.textContent = '0000/min';
    const below = own.y + own.height + 10;
    const above = own.y - 3;
    const clearAt = (y) => {
      text.setAttribute('y', y);
      const box = text.getBBox();
      return (
        ![...labelBoxes].some(([other, otherBox]) => other !== key && overlaps(box, otherBox)) &&
        !placedBoxes.some((other) => overlaps(box, other))
      );
    };
    if (!clearAt(below) && !clearAt(above)) text.setAttribute('y', below);
    placedBoxes.push(text.getBBox());
    text.textContent = '';
    traffic.set(key, text);
  }

  const styleOf = (state) => picture.kinds[state.kind];

  function paint(node, highlighted) {
    const style = styleOf(node.state);
    node.shapes.forEach((shape, index) => {
      shape.setAttribute(
        'fill',
        highlighted && index === 0 ? style.stroke : index === 0 ? style.fill : 'none',
      );
      shape.setAttribute('stroke', highlighted ? '#1a1a1a' : style.stroke);
      shape.setAttribute('stroke-width', highlighted ? '4' : '1.6');
    });
    for (const text of node.group.querySelectorAll(':scope > text')) {
      text.setAttribute('fill', highlighted ? '#ffffff' : style.text);
      text.setAttribute('font-weight', highlighted ? 'bold' : 'normal');
    }
  }

  return {
    /** `counts`: { state: number }; null hides the badges. */
    setCounts(counts) {
      for (const [key, { badge, rect, text, box }] of badges) {
        const count = counts?.[key];
        badge.style.display = counts ? '' : 'none';
        if (!counts) continue;
        const label = String(count ?? 0);
        text.textContent = label;
        const width = Math.max(22, 9 * label.length + 10);
        rect.setAttribute('width', width);
        rect.setAttribute('x', box.x + box.width - width / 2 - 4);
        rect.setAttribute('y', box.y - 11);
        text.setAttribute('x', box.x + box.width - 4);
        text.setAttribute('y', box.y - 2);
        badge.classList.toggle('zero', !count);
        const title = nodes.get(key)?.group.querySelector('title');
        if (title) title.textContent = `${key}: ${label} commande${count === 1 ? '' : 's'}`;
      }
    },
    /** `perMinute`: { transitionKey: count over the last minute }. */
    setTraffic(perMinute) {
      for (const [key, text] of traffic) {
        const count = perMinute?.[key] ?? 0;
        text.textContent = count > 0 ? `${count}/min` : '';
        const path = edges.get(key)?.group.querySelector('path');
        if (path)
          path.setAttribute(
            'stroke-width',
            String(count > 0 ? 1.6 + Math.min(4, Math.log2(1 + count) / 2) : 1),
          );
      }
    },
    /**
     * Points out where a commande is: `current` state, the states it went through and the transitions it
     * took (keys); everything else dimmed. Null clears.
     */
    highlight(path) {
      for (const [key, node] of nodes) {
        paint(node, path !== null && key === path.current);
        node.group.classList.toggle('dim', path !== null && !path.states.includes(key));
        node.group.setAttribute('data-current', path !== null && key === path.current ? 'true' : 'false');
      }
      for (const [key, edge] of edges) {
        const taken = path?.transitions.includes(key) === true;
        edge.group.classList.toggle('taken', taken);
        edge.group.classList.toggle('dim', path !== null && !taken);
      }
    },
    svg,
  };
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** The legend of the state colours (the same palette as generated-diagrams/). */
export function machineLegend(picture, { withHighlight }) {
  const used = [...new Set(picture.states.map((state) => state.kind))];
  const items = used.map((kind) => {
    const style = picture.kinds[kind];
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = style.fill;
    swatch.style.borderColor = style.stroke;
    return h('li', {}, swatch, KIND_LABELS[kind] ?? kind);
  });
  const final = h('span', { class: 'swatch final' });
  items.push(h('li', {}, final, 'double border: final state'));
  if (withHighlight) {
    const current = h('span', { class: 'swatch' });
    current.style.background = '#555';
    current.style.borderColor = '#1a1a1a';
    items.push(h('li', {}, current, 'filled dark: state at the selected step; bold arrows: the path taken'));
  } else {
    items.push(
      h('li', {}, '● count: commandes in that state now · n/min: transitions taken in the last minute'),
    );
  }
  return h('ul', { class: 'legend', 'aria-label': 'Legend' }, items);
}
