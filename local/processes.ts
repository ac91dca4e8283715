import type { ChildProcess } from 'node:child_process';

import { seconds, settlesWithin } from './deadline';

export interface StopOptions {
  /** What the warnings call the process, e.g. "Azurite". */
  name?: string;
  /** How long the stop signal has to work before SIGKILL. */
  graceMs?: number;
  /** The signal that asks it to stop cleanly: SIGTERM, unless the program saves its data only on another. */
  signal?: NodeJS.Signals;
  /** SIGKILL at once, as a crash would. */
  kill?: boolean;
}

// Only a process stuck in the kernel outlives SIGKILL this long; waiting longer would just hang the caller.
const afterKillMs = 2000;

/**
 * Asks a child process to stop (SIGTERM or the given signal, so it can finish cleanly) and kills it (SIGKILL) if it has not exited
 * after `graceMs`, warning that it had to. Never waits longer than `graceMs` plus a few seconds.
 */
export async function stopChild(child: ChildProcess, options: StopOptions = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const { graceMs = 10_000, kill = false, signal = 'SIGTERM' } = options;
  const name = `${options.name ?? child.spawnargs.slice(0, 2).join(' ')} (pid ${child.pid})`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!kill) {
    child.kill(signal);
    if (await settlesWithin(exited, graceMs)) return;
    console.warn(`${name} did not exit within ${seconds(graceMs)} of ${signal}: killed it with SIGKILL`);
  }
  child.kill('SIGKILL');
  if (!(await settlesWithin(exited, afterKillMs))) {
    console.warn(`${name} has not exited ${seconds(afterKillMs)} after SIGKILL: no longer waiting for it`);
  }
}

/**
 * How a development server's CLI ends: on SIGINT or SIGTERM it closes the server once and exits 0 (1 if the
 * close fails).
 */
export function closeOnSignals(close: () => Promise<void>, log: (line: string) => void): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** Runs a CLI's main; a failure is printed as its message alone and exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
