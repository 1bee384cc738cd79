/** npm scripts whose process is choreo itself (`npm start`), for which npm's exit means "stop". */
const NPM_START_SCRIPTS = new Set(['start', 'start:prod']);
const PARENT_POLL_MS = 250;

/**
 * Under `npm start`, calls `stop` when npm is gone. npm runs a script through `sh -c`, and a SIGTERM to
 * npm reaches that shell, not choreo: the shell dies, and choreo, left behind, would hold its port
 * forever. So choreo watches its parent instead: when it changes (the shell is gone, choreo was
 * re-parented), choreo stops as on SIGTERM. Ctrl-C needs none of this: the terminal signals every
 * process of the group, choreo included. Started any other way (node dist/main.js, a container, a
 * test), nothing is watched: a parent may well go away on purpose there (nohup, setsid).
 */
export function stopWhenNpmStartEnds(stop: (reason: string) => void): void {
  if (!NPM_START_SCRIPTS.has(process.env.npm_lifecycle_event ?? '')) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop('npm start ended');
  }, PARENT_POLL_MS);
  timer.unref();
}
