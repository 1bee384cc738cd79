import { instance, type Viz } from '@viz-js/viz';
import type { AnyStateMachine } from 'xstate';
import { toDiagramModel } from './diagram-model.js';
import { type DotOptions, toDot } from './to-dot.js';

let vizInstance: Promise<Viz> | undefined;

// Loading the Graphviz WASM module takes a while; one instance serves every render.
function viz(): Promise<Viz> {
  vizInstance ??= instance();
  return vizInstance;
}

/** Lays out DOT text into a self-contained SVG, offline (Graphviz compiled to WASM). */
export async function renderDotToSvg(dot: string): Promise<string> {
  return (await viz()).renderString(dot, { format: 'svg', engine: 'dot' });
}

export interface RenderMachineSvgOptions extends DotOptions {
  /** The domain event that enters the initial state, drawn on the initial arrow. */
  initialEvent?: string;
}

/**
 * The machine as an SVG diagram, optionally with one state highlighted
 * (as GET /api/commandes/:id/diagramme does with the commande's current state).
 * Throws if `highlightState` is not a state of the machine.
 */
export async function renderMachineSvg(
  machine: AnyStateMachine,
  options: RenderMachineSvgOptions = {},
): Promise<string> {
  const model = toDiagramModel(machine, { initialEvent: options.initialEvent });
  return renderDotToSvg(toDot(model, { highlightState: options.highlightState }));
}
