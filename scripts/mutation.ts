/**
 * `npm run mutation -- [group…] [stryker options]`: mutation testing of the groups of stryker.config.mjs
 * (all of them by default), one after the other, each incremental, at the lowest CPU priority so that it
 * only takes what the machine leaves idle. Then one line per group: the mutants killed, by a failing
 * test or by a timeout, and those that survived. Long (see docs/testing.md): not part of `npm test`.
 *
 *   npm run mutation                                  every group
 *   npm run mutation -- machines                      one group
 *   npm run mutation -- actors-saga --force           every mutant again, not only what changed (needed
 *                                                     after adding tests: see docs/testing.md)
 *   npm run mutation -- event-store --concurrency 2    two test runners, on a quiet machine
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const GROUPS = ['machines', 'event-store', 'actors-saga', 'actors-services'] as const;
type Group = (typeof GROUPS)[number];

function isGroup(argument: string): argument is Group {
  return (GROUPS as readonly string[]).includes(argument);
}

const args = process.argv.slice(2);
const groups = args.filter(isGroup);
const strykerOptions = args.filter((argument) => !isGroup(argument));

const reportSchema = z.object({
  files: z.record(
    z.string(),
    z.object({ mutants: z.array(z.object({ status: z.string(), static: z.boolean().optional() })) }),
  ),
});

interface Tally {
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  ignored: number;
  errors: number;
}

function tally(group: Group): Tally {
  const report = reportSchema.parse(JSON.parse(readFileSync(`reports/mutation/${group}.json`, 'utf8')));
  const count: Tally = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, ignored: 0, errors: 0 };
  for (const { mutants } of Object.values(report.files)) {
    for (const { status } of mutants) {
      if (status === 'Killed') count.killed += 1;
      else if (status === 'Timeout') count.timeout += 1;
      else if (status === 'Survived') count.survived += 1;
      else if (status === 'NoCoverage') count.noCoverage += 1;
      else if (status === 'Ignored') count.ignored += 1;
      else count.errors += 1;
    }
  }
  return count;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(1)} %`;
}

const failed: Group[] = [];
for (const group of groups.length > 0 ? groups : GROUPS) {
  console.log(`\n== mutation testing: ${group}`);
  const stryker = ['node_modules/.bin/stryker', 'run', 'stryker.config.mjs', ...strykerOptions];
  const [command, ...commandArgs] = process.platform === 'win32' ? stryker : ['nice', '-n', '19', ...stryker];
  const run = spawnSync(command ?? 'node_modules/.bin/stryker', commandArgs, {
    stdio: 'inherit',
    env: { ...process.env, MUTATION_GROUP: group },
  });
  if (run.status !== 0) failed.push(group);
}

console.log('\n== mutation scores (killed / mutants tested: killed + timeout + survived + no coverage)');
for (const group of groups.length > 0 ? groups : GROUPS) {
  if (failed.includes(group)) {
    console.log(`${group}: the run failed, no score`);
    continue;
  }
  const t = tally(group);
  const tested = t.killed + t.timeout + t.survived + t.noCoverage;
  console.log(
    `${group}: ${percent(t.killed + t.timeout, tested)} killed (${percent(t.killed, tested)} by a failing test), ` +
      `${t.killed} killed, ${t.timeout} timeouts, ${t.survived} survived, ${t.noCoverage} without coverage, ` +
      `${t.ignored} ignored, ${t.errors} errors`,
  );
}
if (failed.length > 0) process.exitCode = 1;
