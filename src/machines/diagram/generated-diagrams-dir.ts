import { fileURLToPath } from 'node:url';

/**
 * Where the committed diagrams live: generated-diagrams/ at the repository root. Resolved from this
 * source file, for the script and the staleness test; the compiled server never writes diagrams.
 */
export const GENERATED_DIAGRAMS_DIR = fileURLToPath(new URL('../../../generated-diagrams/', import.meta.url));

/** The files this generator owns there; anything else in the folder is left alone. */
export function isGeneratedDiagramFile(fileName: string): boolean {
  return fileName.endsWith('.mmd') || fileName.endsWith('.svg');
}
