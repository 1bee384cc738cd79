import type { DiagramModel, StateKind } from './diagram-model.js';
import type { HtmlLabel } from './dot-syntax.js';
import { DRAWN_KINDS, KIND_STYLES } from './state-kind-style.js';

const LEGEND_TEXT: Record<StateKind, string> = {
  en_cours: 'en cours',
  succes: 'succès',
  echec: 'échec',
  compensation: 'compensation',
};

/**
 * A key drawn under the diagram, limited to the kinds the machine uses, so the SVG explains
 * itself when served alone by the API.
 */
export function dotLegend(model: DiagramModel, options: { highlighted: boolean }): HtmlLabel {
  const cells = DRAWN_KINDS.filter((kind) => model.states.some((s) => s.kind === kind)).map((kind) => {
    const style = KIND_STYLES[kind];
    // The &nbsp; pad absorbs viewers whose fallback font is wider than Graphviz's metrics.
    return `<TD BGCOLOR="${style.fill}" COLOR="${style.stroke}" BORDER="1" STYLE="rounded"><FONT COLOR="${style.text}">&nbsp;${LEGEND_TEXT[kind]}&nbsp;</FONT></TD>`;
  });
  if (options.highlighted) {
    cells.push(
      '<TD BGCOLOR="#555555" COLOR="#1a1a1a" BORDER="3" STYLE="rounded"><FONT COLOR="#ffffff">&nbsp;état actuel&nbsp;</FONT></TD>',
    );
  }
  cells.push('<TD BORDER="0"><FONT COLOR="#555555">double bord : état final&nbsp;&nbsp;&nbsp;</FONT></TD>');
  return { html: `<TABLE BORDER="0" CELLSPACING="8" CELLPADDING="5"><TR>${cells.join('')}</TR></TABLE>` };
}
