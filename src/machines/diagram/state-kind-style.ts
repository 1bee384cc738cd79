import type { StateKind } from './diagram-model.js';

export interface KindStyle {
  fill: string;
  stroke: string;
  text: string;
}

/** One palette for Mermaid and Graphviz, so both drawings tell the same story. */
export const KIND_STYLES: Record<StateKind, KindStyle> = {
  en_cours: { fill: '#e8f0fb', stroke: '#3b6db3', text: '#1b2f4d' },
  succes: { fill: '#dcf2e3', stroke: '#2e8b57', text: '#14422a' },
  echec: { fill: '#fbe0de', stroke: '#c0392b', text: '#6b1a12' },
  compensation: { fill: '#fdebd3', stroke: '#e67e22', text: '#6e3a06' },
};

export const DRAWN_KINDS: readonly StateKind[] = ['en_cours', 'succes', 'echec', 'compensation'];
