import { describe, expect, it } from 'vitest';
import { commandeDiagram } from '../registry.js';
import { toDiagramModel } from './diagram-model.js';
import { renderMachineSvg } from './render-machine-svg.js';
import { toDot } from './to-dot.js';
import { toMermaid } from './to-mermaid.js';

const { machine, initialEvent } = commandeDiagram;
const model = toDiagramModel(machine, { initialEvent });

describe('diagram of the commande machine', () => {
  it('reads the states, their kinds and the transitions from the machine definition', () => {
    expect(model.initial).toBe('en_attente_stock');
    expect(model.states).toContainEqual({ key: 'annulee', kind: 'echec', final: true });
    expect(model.states).toContainEqual({ key: 'paiement_refuse', kind: 'compensation', final: false });
    expect(model.states).toContainEqual({ key: 'vente_confirmee', kind: 'succes', final: true });
    expect(model.transitions).toContainEqual({
      source: 'paiement_refuse',
      target: 'annulee',
      label: 'StockLibere',
    });
  });

  it('draws in Mermaid the creation event on the initial arrow and final states into [*]', () => {
    const mermaid = toMermaid(model);
    expect(mermaid).toContain('[*] --> en_attente_stock : CommandeCreee');
    expect(mermaid).toContain('vente_confirmee --> [*]');
    expect(mermaid).toContain('class stock_indisponible, annulee echec');
  });

  it('highlights only the requested state', async () => {
    const plain = toDot(model);
    const highlighted = toDot(model, { highlightState: 'stock_reserve' });
    const changed = highlighted.split('\n').filter((line, i) => line !== plain.split('\n')[i]);
    // The graph line changes too: its legend gains the "état actuel" key.
    expect(changed).toHaveLength(2);
    expect(changed.find((line) => line.includes('"stock_reserve" ['))).toContain('penwidth=4');
    const svg = await renderMachineSvg(machine, { initialEvent, highlightState: 'stock_reserve' });
    expect(svg).toContain('stroke-width="4"');
  });

  it('refuses to highlight a state the machine does not have', async () => {
    await expect(renderMachineSvg(machine, { highlightState: 'livree' })).rejects.toThrow(
      /no state 'livree'/,
    );
  });

  it('renders the same bytes every time', async () => {
    const first = await renderMachineSvg(machine, { initialEvent, highlightState: 'annulee' });
    expect(await renderMachineSvg(machine, { initialEvent, highlightState: 'annulee' })).toBe(first);
  });
});
