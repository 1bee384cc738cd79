import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** What the embedded PostgreSQL's starter and its watchdog (postgres-watchdog.ts) share. */

export const CHOREO_APPLICATION_NAME = 'choreo';
/** Written to stdout once the owner is gone and other choreo processes still use the server. */
export const HANDED_OVER = 'handed-over';

export const watchdogArgumentsSchema = z.object({
  postgres: z.string(),
  pgdata: z.string(),
  port: z.number().int(),
  logFile: z.string(),
  pidFile: z.string(),
  flags: z.array(z.string()),
  user: z.object({ uid: z.number().int(), gid: z.number().int() }).nullable(),
});
export type WatchdogArguments = z.infer<typeof watchdogArgumentsSchema>;

/** The pid written in `file`, or null when there is none. */
export function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
