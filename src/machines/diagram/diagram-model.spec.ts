import { describe, expect, it } from 'vitest';
import { createMachine, setup } from 'xstate';
import { toDiagramModel } from './diagram-model.js';
import { quote } from './dot-syntax.js';
import { isGeneratedDiagramFile } from './generated-diagrams-dir.js';
import { toDot } from './to-dot.js';
import { toMermaid } from './to-mermaid.js';

// What the order machine does not have, and a diagram must still draw right: guards of every form, an
// eventless transition, a transition without a target, and only states in progress.
const anonymousGuard = [() => true][0];
const guarded = setup({ guards: { estPret: () => true } }).createMachine({
  id: 'porte',
  initial: 'fermee',
  states: {
    fermee: {
      on: {
        Nommee: { target: 'ouverte', guard: 'estPret' },
        Objet: { target: 'ouverte', guard: { type: 'estPret' } },
        Fonction: {
          target: 'ouverte',
          guard: function aLaMain() {
            return true;
          },
        },
        Anonyme: { target: 'ouverte', guard: anonymousGuard },
        Sonner: {},
      },
    },
    ouverte: { always: { target: 'passee' } },
    passee: { type: 'final' },
  },
});

describe('the diagram model of a machine', () => {
  it('labels each transition with its event, and the name of its guard when it has one', () => {
    expect(toDiagramModel(guarded).transitions).toEqual([
      { source: 'fermee', target: 'ouverte', label: 'Nommee [estPret]' },
      { source: 'fermee', target: 'ouverte', label: 'Objet [estPret]' },
      { source: 'fermee', target: 'ouverte', label: 'Fonction [aLaMain]' },
      { source: 'fermee', target: 'ouverte', label: 'Anonyme [guard]' },
      { source: 'fermee', target: 'fermee', label: 'Sonner' },
      { source: 'ouverte', target: 'passee', label: 'always' },
    ]);
  });

  it('refuses a machine with nested states, naming the state, rather than drawing it flat', () => {
    const nested = createMachine({
      id: 'imbriquee',
      initial: 'dehors',
      states: { dehors: { initial: 'dedans', states: { dedans: {} } } },
    });
    expect(() => toDiagramModel(nested)).toThrow("diagram of machine 'imbriquee': nested state 'dehors'");
  });

  it('draws in Mermaid a plain initial arrow without a creation event, and styles only the kinds used', () => {
    const mermaid = toMermaid(toDiagramModel(guarded));
    expect(mermaid).toContain('  [*] --> fermee\n');
    expect(mermaid).toContain('  classDef en_cours ');
    expect(mermaid).not.toMatch(/classDef (succes|echec|compensation)/);
    expect(mermaid).toContain('  passee --> [*]\n');
  });

  it('draws in Graphviz a legend of the kinds used only', () => {
    const dot = toDot(toDiagramModel(guarded));
    expect(dot).toContain('en cours');
    expect(dot).not.toMatch(/succès|échec|>&nbsp;compensation/);
  });
});

describe('DOT text', () => {
  it('quotes a name with its quotes and backslashes escaped', () => {
    expect(quote('le "bon" \\ chemin')).toBe('"le \\"bon\\" \\\\ chemin"');
  });
});

describe('the files of generated-diagrams/ that the generator owns', () => {
  it('are the Mermaid and SVG drawings, and nothing else there', () => {
    expect(
      ['commande.mmd', 'commande.svg', 'README.md', 'svg.txt', 'notes.mmd.bak'].filter(
        isGeneratedDiagramFile,
      ),
    ).toEqual(['commande.mmd', 'commande.svg']);
  });
});
