import type { StepResult, TimelinePoint } from './saga-step.js';

const WIDTH = 960;
const PANEL_HEIGHT = 220;
const MARGIN = { left: 64, right: 150, top: 40, bottom: 36 };

interface Series {
  name: string;
  color: string;
  values: { t: number; v: number }[];
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function panel(
  top: number,
  title: string,
  unit: string,
  series: Series[],
  tMax: number,
  logScale: boolean,
  steps: { t: number; label: string }[],
): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const all = series.flatMap((s) => s.values.map((point) => point.v));
  const vMax = niceMax(Math.max(1, ...all));
  const vMin = logScale ? 1 : 0;
  const x = (t: number) => MARGIN.left + (t / Math.max(1, tMax)) * plotWidth;
  const y = (v: number) => {
    const fraction = logScale
      ? (Math.log10(Math.max(v, vMin)) - Math.log10(vMin)) / (Math.log10(vMax) - Math.log10(vMin) || 1)
      : (v - vMin) / (vMax - vMin || 1);
    return top + MARGIN.top + plotHeight - fraction * plotHeight;
  };
  const parts: string[] = [];
  parts.push(
    `<text x="${MARGIN.left}" y="${top + 22}" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  );
  const ticks = logScale
    ? Array.from({ length: Math.round(Math.log10(vMax)) + 1 }, (_, i) => 10 ** i)
    : [0, 0.25, 0.5, 0.75, 1].map((f) => f * vMax);
  for (const tick of ticks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" font-size="11" text-anchor="end">${Math.round(tick)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${top + MARGIN.top + plotHeight / 2}" font-size="11" transform="rotate(-90 14 ${top + MARGIN.top + plotHeight / 2})" text-anchor="middle">${escapeXml(unit)}</text>`,
  );
  steps.forEach((step, index) => {
    parts.push(
      `<line x1="${x(step.t)}" x2="${x(step.t)}" y1="${top + MARGIN.top}" y2="${top + MARGIN.top + plotHeight}" stroke="#bbb" stroke-dasharray="3,3"/>`,
      `<text x="${x(step.t) + 3}" y="${top + MARGIN.top + 10 + (index % 3) * 11}" font-size="10" fill="#777">${escapeXml(step.label)}</text>`,
    );
  });
  const tickEvery = tMax > 120 ? 30 : tMax > 40 ? 10 : 5;
  for (let t = 0; t <= tMax; t += tickEvery) {
    parts.push(
      `<text x="${x(t)}" y="${top + MARGIN.top + plotHeight + 16}" font-size="11" text-anchor="middle">${t}s</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${top + MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`,
  );
  series.forEach((s, index) => {
    // One polyline per run of consecutive seconds: no line is drawn across the pauses between steps.
    const segments: { t: number; v: number }[][] = [];
    for (const point of s.values) {
      const current = segments.at(-1);
      const previous = current?.at(-1);
      if (current && previous && point.t - previous.t <= 1.01) current.push(point);
      else segments.push([point]);
    }
    for (const segment of segments) {
      const points = segment.map((point) => `${x(point.t).toFixed(1)},${y(point.v).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${points}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
    }
    const legendY = top + MARGIN.top + 14 + index * 18;
    parts.push(
      `<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 32}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${WIDTH - MARGIN.right + 38}" y="${legendY}" font-size="12">${escapeXml(s.name)}</text>`,
    );
  });
  return parts.join('\n');
}

/** Throughput and latency percentiles over the saga benchmark, one point per second; no chart library. */
export function sagaChart(steps: StepResult[], subtitle: string): string {
  const points: TimelinePoint[] = steps.flatMap((step) => step.timeline).sort((a, b) => a.t - b.t);
  const merged = new Map<number, TimelinePoint>();
  for (const point of points) {
    const existing = merged.get(point.t);
    if (!existing) merged.set(point.t, { ...point });
    else {
      existing.arrivals += point.arrivals;
      existing.completions += point.completions;
      existing.p50 = Math.max(existing.p50, point.p50);
      existing.p95 = Math.max(existing.p95, point.p95);
      existing.p99 = Math.max(existing.p99, point.p99);
    }
  }
  const timeline = [...merged.values()];
  const tMax = Math.max(1, ...timeline.map((point) => point.t + 1));
  const stepMarks = steps.map((step) => ({
    t: Math.min(...step.timeline.map((point) => point.t)),
    label: `${step.label} ${step.rate}/s`,
  }));
  const series = (
    name: string,
    color: string,
    pick: (p: TimelinePoint) => number,
    skipEmpty: boolean,
  ): Series => ({
    name,
    color,
    values: timeline
      .filter((p) => !skipEmpty || p.completions > 0)
      .map((p) => ({ t: p.t + 0.5, v: pick(p) })),
  });
  const height = PANEL_HEIGHT * 2 + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<title>${escapeXml(`Sagas per second and latency percentiles over time: ${subtitle}`)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${MARGIN.left}" y="20" font-size="12" fill="#555">${escapeXml(subtitle)}</text>`,
    panel(
      20,
      'Checkouts sent and sagas completed per second',
      'per second',
      [
        series('checkouts sent', '#4c78a8', (p) => p.arrivals, false),
        series('sagas final', '#f58518', (p) => p.completions, false),
      ],
      tMax,
      false,
      stepMarks,
    ),
    panel(
      20 + PANEL_HEIGHT,
      'Latency, checkout to final state (sagas finishing in that second)',
      'ms (log)',
      [
        series('p50', '#54a24b', (p) => p.p50, true),
        series('p95', '#eeca3b', (p) => p.p95, true),
        series('p99', '#e45756', (p) => p.p99, true),
      ],
      tMax,
      true,
      stepMarks,
    ),
    '</svg>',
  ].join('\n');
}
