import type { DiagramModel, DiagramState } from './diagram-model.js';
import { dotLegend } from './dot-legend.js';
import { attributes, type DotAttributes, quote } from './dot-syntax.js';
import { KIND_STYLES } from './state-kind-style.js';

export interface DotOptions {
  /** A state to point out, e.g. where one commande stands now. */
  highlightState?: string;
}

const FONT = 'Helvetica,Arial,sans-serif';
const NEUTRAL_EDGE = '#555555';
const INK = '#1a1a1a';
// Quoted, so it cannot collide with a state key (keys are identifiers).
const START_NODE = '[*]';

function stateNode(state: DiagramState, highlighted: boolean): string {
  const style = KIND_STYLES[state.kind];
  const attrs: DotAttributes = { fillcolor: style.fill, color: style.stroke, fontcolor: style.text };
  // A final state gets a second border, as the UML double circle does, without the huge circle.
  if (state.final) attrs.peripheries = 2;
  if (highlighted) {
    Object.assign(attrs, {
      fillcolor: style.stroke,
      fontcolor: '#ffffff',
      color: INK,
      penwidth: 4,
    });
  }
  return `  ${quote(state.key)} ${attributes(attrs)};`;
}

function edge(model: DiagramModel, source: string, target: string, label: string): string {
  const kind = model.states.find((s) => s.key === target)?.kind ?? 'en_cours';
  const attrs: DotAttributes = { label: ` ${label} ` };
  if (kind === 'en_cours' || kind === 'succes') {
    const color = kind === 'succes' ? KIND_STYLES.succes.stroke : NEUTRAL_EDGE;
    // Heavier edges keep the success path on one straight line; failures branch off it.
    Object.assign(attrs, { color, fontcolor: color, weight: 4 });
  } else {
    Object.assign(attrs, { color: KIND_STYLES[kind].stroke, fontcolor: KIND_STYLES[kind].stroke });
  }
  return `  ${quote(source)} -> ${quote(target)} ${attributes(attrs)};`;
}

/** A Graphviz DOT description of the model; same model and options, same text. */
export function toDot(model: DiagramModel, options: DotOptions = {}): string {
  const { highlightState } = options;
  if (highlightState !== undefined && !model.states.some((s) => s.key === highlightState)) {
    throw new Error(`machine '${model.id}' has no state '${highlightState}' to highlight`);
  }
  const graph = attributes({
    rankdir: 'LR',
    fontname: FONT,
    fontsize: 12,
    bgcolor: 'white',
    pad: 0.3,
    nodesep: 0.5,
    ranksep: 0.7,
    labelloc: 'b',
    label: dotLegend(model, { highlighted: highlightState !== undefined }),
  });
  const nodeDefaults = attributes({
    shape: 'box',
    style: 'rounded,filled',
    fontname: FONT,
    fontsize: 13,
    penwidth: 1.6,
    margin: '0.25,0.12',
  });
  const edgeDefaults = attributes({ fontname: FONT, fontsize: 11, color: NEUTRAL_EDGE, arrowsize: 0.8 });
  const start = attributes({
    shape: 'circle',
    style: 'filled',
    fillcolor: INK,
    color: INK,
    label: '',
    width: 0.2,
    fixedsize: 'true',
  });
  const initialEdge = attributes({ label: ` ${model.initialEvent ?? ''} `, fontcolor: '#333333', weight: 4 });
  const lines = [
    `digraph ${quote(model.id)} {`,
    `  graph ${graph};`,
    `  node ${nodeDefaults};`,
    `  edge ${edgeDefaults};`,
    `  ${quote(START_NODE)} ${start};`,
    ...model.states.map((state) => stateNode(state, state.key === highlightState)),
    `  ${quote(START_NODE)} -> ${quote(model.initial)} ${initialEdge};`,
    ...model.transitions.map((t) => edge(model, t.source, t.target, t.label)),
    '}',
  ];
  return `${lines.join('\n')}\n`;
}
