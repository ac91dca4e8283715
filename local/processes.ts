import type { ChildProcess } from 'node:child_process';

import { seconds, settlesWithin } from './deadline';

export interface StopOptions {
  /** What the warnings call the process, e.g. "Azurite". */
  name?: string;
  /** How long SIGTERM has to work before SIGKILL. */
  graceMs?: number;
  /** SIGKILL at once, as a crash would. */
  kill?: boolean;
}

// Only a process stuck in the kernel outlives SIGKILL this long; waiting longer would just hang the caller.
const afterKillMs = 2000;

/**
 * Asks a child process to stop (SIGTERM, so it can finish cleanly) and kills it (SIGKILL) if it has not exited
 * after `graceMs`, warning that it had to. Never waits longer than `graceMs` plus a few seconds.
 */
export async function stopChild(child: ChildProcess, options: StopOptions = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const { graceMs = 10_000, kill = false } = options;
  const name = `${options.name ?? child.spawnargs.slice(0, 2).join(' ')} (pid ${child.pid})`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!kill) {
    child.kill('SIGTERM');
    if (await settlesWithin(exited, graceMs)) return;
    console.warn(`${name} did not exit within ${seconds(graceMs)} of SIGTERM: killed it with SIGKILL`);
  }
  child.kill('SIGKILL');
  if (!(await settlesWithin(exited, afterKillMs))) {
    console.warn(`${name} has not exited ${seconds(afterKillMs)} after SIGKILL: no longer waiting for it`);
  }
}
