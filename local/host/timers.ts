// Timer triggers. Each timer is re-armed from its schedule rather than with setInterval, so slow
// runs and clock drift never accumulate; a tick that finds the previous run still going is skipped,
// because the real host never overlaps a timer function with itself either.
import { randomUUID } from 'node:crypto';

import type { InvocationRequest, LogLevel, RegisteredFunction } from './core';
import type { Schedule } from './ncrontab';

export interface TimerFunction {
  readonly fn: RegisteredFunction;
  readonly schedule: Schedule;
  readonly runOnStartup: boolean;
}

// setTimeout's ceiling (~24.8 days); longer waits are split.
const maxDelay = 2 ** 31 - 1;
// A tick starting later than this after its scheduled time reports `isPastDue`.
const pastDueAfterMs = 1000;

export class TimerScheduler {
  readonly #handles = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(
    private readonly timers: readonly TimerFunction[],
    private readonly invoke: (fn: RegisteredFunction, request: InvocationRequest) => Promise<unknown>,
    private readonly log: (level: LogLevel, message: string, functionName: string) => void,
  ) {}

  start(): void {
    for (const timer of this.timers) this.#startTimer(timer);
  }

  stop(): void {
    this.#stopped = true;
    for (const handle of this.#handles) clearTimeout(handle);
    this.#handles.clear();
  }

  #startTimer({ fn, schedule, runOnStartup }: TimerFunction): void {
    let running = false;
    let last = new Date();

    const arm = (at: Date): void => {
      if (this.#stopped) return;
      const delay = at.getTime() - Date.now();
      const handle = setTimeout(
        () => {
          this.#handles.delete(handle);
          if (delay > maxDelay) arm(at);
          else tick(at);
        },
        Math.min(Math.max(delay, 0), maxDelay),
      );
      this.#handles.add(handle);
    };

    const tick = (scheduled: Date): void => {
      if (this.#stopped) return;
      const now = new Date();
      // From "now" when late (e.g. after the machine slept): missed ticks collapse into this one.
      const next = schedule.next(now > scheduled ? now : scheduled);
      arm(next);
      if (running) {
        this.log(
          'information',
          `skipped the ${scheduled.toISOString()} tick: the previous run is still going`,
          fn.name,
        );
        return;
      }
      running = true;
      const timerInfo = {
        Schedule: { AdjustForDST: true },
        ScheduleStatus: { Last: last.toISOString(), Next: next.toISOString(), LastUpdated: now.toISOString() },
        IsPastDue: now.getTime() - scheduled.getTime() > pastDueAfterMs,
      };
      last = scheduled;
      this.invoke(fn, {
        invocationId: randomUUID(),
        functionId: fn.metadata.functionId,
        inputData: [{ name: fn.triggerName, data: { json: JSON.stringify(timerInfo) } }],
        triggerMetadata: {},
      })
        .catch(() => undefined) // already logged by invoke; the schedule goes on
        .finally(() => {
          running = false;
        });
    };

    if (runOnStartup) tick(new Date());
    else arm(schedule.next(new Date()));
  }
}
