import type { AnyStateMachine } from 'xstate';

/** A transition as coverage reports list it: `source --Event--> target`. */
export function transitionKey(source: string, eventType: string, target: string): string {
  return `${source} --${eventType}--> ${target}`;
}

/** Every transition a machine's definition declares; a targetless one loops on its own state. */
export function definedTransitions(machine: AnyStateMachine): string[] {
  return Object.values(machine.root.states).flatMap((node) =>
    [...node.transitions.values()]
      .flat()
      .flatMap((definition) =>
        (definition.target ?? [node]).map((target) =>
          transitionKey(node.key, definition.eventType, target.key),
        ),
      ),
  );
}

/** The transitions a walk through the machine takes: `states[i] --events[i]--> states[i + 1]`. */
export function transitionsTaken(walk: { states: readonly string[]; events: readonly string[] }): string[] {
  return walk.events.map((event, i) =>
    transitionKey(walk.states[i] ?? '?', event, walk.states[i + 1] ?? '?'),
  );
}
