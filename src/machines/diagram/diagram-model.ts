import type { AnyStateMachine, AnyStateNode } from 'xstate';

/** How a state is drawn, from its tags: the success path stands apart from failure and compensation. */
export type StateKind = 'en_cours' | 'succes' | 'echec' | 'compensation';

export interface DiagramState {
  key: string;
  kind: StateKind;
  final: boolean;
}

export interface DiagramTransition {
  source: string;
  target: string;
  /** The event type, followed by the guard name when the transition is guarded. */
  label: string;
}

/** A machine flattened to what a diagram needs, in definition order so renderings are deterministic. */
export interface DiagramModel {
  id: string;
  initial: string;
  initialEvent: string | undefined;
  states: DiagramState[];
  transitions: DiagramTransition[];
}

// A state tagged both 'echec' and 'compensation' is drawn as the worse of the two.
const KIND_PRIORITY: readonly StateKind[] = ['echec', 'compensation', 'succes'];

function kindOf(node: AnyStateNode): StateKind {
  return KIND_PRIORITY.find((kind) => node.tags.includes(kind)) ?? 'en_cours';
}

function guardName(guard: unknown): string | null {
  if (guard === undefined) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'guard';
  if (typeof guard === 'object' && guard !== null && 'type' in guard && typeof guard.type === 'string') {
    return guard.type;
  }
  return 'guard';
}

function transitionsOf(node: AnyStateNode): DiagramTransition[] {
  const definitions = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
  return definitions.flatMap((definition) => {
    const event = definition.eventType === '' ? 'always' : definition.eventType;
    const guard = guardName(definition.guard);
    const label = guard === null ? event : `${event} [${guard}]`;
    // A targetless transition runs actions and stays put: a self-loop says exactly that.
    const targets = definition.target ?? [node];
    return targets.map((target) => ({ source: node.key, target: target.key, label }));
  });
}

export function toDiagramModel(
  machine: AnyStateMachine,
  options: { initialEvent?: string } = {},
): DiagramModel {
  const nodes: AnyStateNode[] = Object.values(machine.root.states);
  const nested = nodes.find((node) => node.type === 'compound' || node.type === 'parallel');
  if (nested !== undefined) {
    // Drawing nested states flat would be wrong, not just ugly: refuse until someone needs it.
    throw new Error(`diagram of machine '${machine.id}': nested state '${nested.key}' is not supported`);
  }
  const initial = machine.root.initial?.target[0]?.key;
  if (initial === undefined) throw new Error(`diagram of machine '${machine.id}': no initial state`);
  return {
    id: machine.id,
    initial,
    initialEvent: options.initialEvent,
    states: nodes.map((node) => ({ key: node.key, kind: kindOf(node), final: node.type === 'final' })),
    transitions: nodes.flatMap(transitionsOf),
  };
}
