import { toDiagramModel } from '../machines/diagram/diagram-model.js';
import { renderDotToSvg } from '../machines/diagram/render-machine-svg.js';
import { KIND_STYLES } from '../machines/diagram/state-kind-style.js';
import { toDot } from '../machines/diagram/to-dot.js';
import { commandeDiagram } from '../machines/registry.js';

/** The order machine as the explorer draws it: the generated diagram's SVG, and what each shape stands for. */
export interface MachinePicture {
  svg: string;
  initial: string;
  states: { key: string; kind: string; final: boolean }[];
  transitions: { source: string; target: string; label: string }[];
  /** The state colours of generated-diagrams/, for the page's legend and highlights. */
  kinds: Record<string, { fill: string; stroke: string; text: string }>;
}

let picture: Promise<MachinePicture> | null = null;

/** Drawn once per process from the machine's definition (the layout is Graphviz's, offline). */
export function machinePicture(): Promise<MachinePicture> {
  picture ??= (async () => {
    const model = toDiagramModel(commandeDiagram.machine, { initialEvent: commandeDiagram.initialEvent });
    return {
      svg: await renderDotToSvg(toDot(model)),
      initial: model.initial,
      states: model.states,
      transitions: model.transitions,
      kinds: KIND_STYLES,
    };
  })();
  return picture;
}
