import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface ProcessSample {
  cpuSeconds: number;
  rssMb: number;
  peakRssMb: number;
}

/** CPU time (user + system) and memory of a process, from /proc. */
export function sampleProcess(pid: number): ProcessSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may contain spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return {
      cpuSeconds: (utime + stime) / CLOCK_TICKS,
      rssMb: kb('VmRSS') / 1024,
      peakRssMb: kb('VmHWM') / 1024,
    };
  } catch {
    return null;
  }
}

export interface MachineSample {
  busy: number;
  total: number;
}

/** Whole-machine CPU counters: the box is shared, so a step also reports how busy the machine was. */
export function sampleMachine(): MachineSample {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

/** Busy fraction of all cores between two samples, in cores (2.0 = both cores fully busy). */
export function coresBusy(before: MachineSample, after: MachineSample): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  return ((after.busy - before.busy) / total) * cpus().length;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramGb: number;
  node: string;
  postgres: string;
  redis: string;
  loadAverage: string;
}

export function machineInfo(postgres: string, redis: string): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return {
    cpuModel: model,
    cores: cpus().length,
    ramGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres,
    redis,
    loadAverage: loadavg,
  };
}

/**
 * CPU seconds used so far by each PostgreSQL backend serving one database (their process title names
 * it), so that the server's work for choreo can be told apart from other users of the same server.
 */
export function postgresCpuSeconds(database: string): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!title.startsWith('postgres: ') || !title.includes(` ${database} `)) continue;
      const sample = sampleProcess(Number(entry));
      if (sample) byPid.set(Number(entry), sample.cpuSeconds);
    } catch {
      // the process ended meanwhile
    }
  }
  return byPid;
}

/**
 * CPU used between two samples by backends alive at the second one (connections opened meanwhile count
 * in full; a backend that exited in between is missed, so this is a lower bound).
 */
export function postgresCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += Math.max(0, seconds - (before.get(pid) ?? 0));
  return total;
}
