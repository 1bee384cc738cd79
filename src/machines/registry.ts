import type { AnyStateMachine } from 'xstate';
import { commandeMachine } from './commande.machine.js';

export interface RegisteredMachine {
  /** File stem in generated-diagrams/ (`<name>.mmd`, `<name>.svg`). */
  name: string;
  machine: AnyStateMachine;
  /**
   * The domain event that creates the entity and enters the initial state. It is not a machine
   * transition, so the diagram would otherwise leave the initial arrow unexplained.
   */
  initialEvent?: string;
}

export const commandeDiagram: RegisteredMachine = {
  name: 'commande',
  machine: commandeMachine,
  initialEvent: 'CommandeCreee',
};

/** Every machine of the system: add a new one here and `npm run diagrams` draws it. */
export const machineRegistry: readonly RegisteredMachine[] = [commandeDiagram];
