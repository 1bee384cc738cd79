import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'choreo'): Logger {
  return pino({ name, level });
}
