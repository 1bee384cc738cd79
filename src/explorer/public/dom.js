/** Small DOM helpers: elements built from data, never from HTML strings (no injection from event data). */

/**
 * An element with attributes and children. Attributes starting with `on` are listeners; `class` and
 * `text` are shortcuts; `false`/null/undefined attributes are left out.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'text') element.textContent = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function svgElement(tag, attributes = {}) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return '<1 ms';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  const time = date.toLocaleTimeString('en-GB', { hour12: false });
  return `${time}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

export function formatRate(perSecond) {
  if (perSecond >= 100) return perSecond.toFixed(0);
  if (perSecond >= 10) return perSecond.toFixed(1);
  return perSecond.toFixed(2);
}

export function formatMoney(amount) {
  return amount.toLocaleString('en-CA', { style: 'currency', currency: 'CAD' });
}

/** A state name as a badge in the colours of its kind (the generated diagrams' palette). */
export function statutBadge(statut, picture) {
  const state = picture.states.find((candidate) => candidate.key === statut);
  const style = state ? picture.kinds[state.kind] : null;
  const badge = h('span', { class: 'statut', text: statut ?? '—' });
  if (style) {
    badge.style.background = style.fill;
    badge.style.borderColor = style.stroke;
    badge.style.color = style.text;
  }
  return badge;
}

/** Replaces a container's content. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}
