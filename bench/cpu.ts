import { readFileSync } from 'node:fs';

/** Linux reports process and machine CPU time in clock ticks of 1/100 s (USER_HZ). */
const TICKS_PER_SECOND = 100;

export interface CpuSample {
  at: number;
  /** CPU seconds (user + system) each named process has used since it started. */
  processes: Record<string, number>;
  /** CPU seconds the whole machine has been busy (all cores), and busy or idle. */
  machineBusy: number;
  machineTotal: number;
}

export interface CpuUse {
  wallSeconds: number;
  /** CPU seconds per process over the interval. */
  seconds: Record<string, number>;
  /** CPU seconds used by everything else on the machine (other people's tests, the system). */
  otherSeconds: number;
  /** How busy the whole machine was over the interval, in % of all its cores. */
  machineBusyPercent: number;
}

function processSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN; // not on Linux, or the process is gone
  }
}

function machineSeconds(): { busy: number; total: number } {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = ticks.map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return { busy: busy / TICKS_PER_SECOND, total: (busy + idle! + iowait!) / TICKS_PER_SECOND };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

export function cpuSample(pids: Record<string, number>): CpuSample {
  const machine = machineSeconds();
  return {
    at: performance.now(),
    processes: Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processSeconds(pid)])),
    machineBusy: machine.busy,
    machineTotal: machine.total,
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** What each process, and the rest of the machine, used between two samples. */
export function cpuBetween(before: CpuSample, after: CpuSample): CpuUse {
  const seconds: Record<string, number> = {};
  let ours = 0;
  for (const [name, start] of Object.entries(before.processes)) {
    const used = (after.processes[name] ?? NaN) - start;
    seconds[name] = round1(used);
    ours += used;
  }
  const busy = after.machineBusy - before.machineBusy;
  return {
    wallSeconds: round1((after.at - before.at) / 1000),
    seconds,
    otherSeconds: round1(Math.max(0, busy - ours)),
    machineBusyPercent: Math.round((busy / (after.machineTotal - before.machineTotal)) * 100),
  };
}
