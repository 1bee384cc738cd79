import type { RegisteredMachine } from '../registry.js';
import { toDiagramModel } from './diagram-model.js';
import { renderDotToSvg } from './render-machine-svg.js';
import { toDot } from './to-dot.js';
import { toMermaid } from './to-mermaid.js';

export interface DiagramFile {
  /** Name inside generated-diagrams/. */
  fileName: string;
  content: string;
}

/** Everything `npm run diagrams` writes, computed in memory so a test can compare it with the committed files. */
export async function generateDiagramFiles(machines: readonly RegisteredMachine[]): Promise<DiagramFile[]> {
  const files: DiagramFile[] = [];
  for (const { name, machine, initialEvent } of machines) {
    const model = toDiagramModel(machine, { initialEvent });
    files.push({ fileName: `${name}.mmd`, content: toMermaid(model) });
    files.push({ fileName: `${name}.svg`, content: await renderDotToSvg(toDot(model)) });
  }
  return files;
}
