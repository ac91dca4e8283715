import { seconds, settlesWithin } from '../deadline';

/**
 * How long close() waits for each of its steps. Every wait is bounded because some never end by themselves:
 * a Service Bus complete sent just as the broker connection drops waits a whole try timeout (a minute) for an
 * answer that never comes before the SDK retries, and close() used to wait all that time for it.
 */
export const deadlines = {
  /** Stopping a receiver: one drain round trip with the broker. */
  stopReceiving: 2000,
  /** In-flight invocations and message settles: longer than a doorbell ring's own 5-s timeout. */
  drain: 6000,
  /** Each of closing receiver links, then Service Bus connections. */
  disconnect: 1000,
  /** The HTTP server, once its connections are cut. */
  httpServer: 1000,
  /** The app's appTerminate hooks, all together. */
  appTerminate: 2000,
};

/** The longest close() can take: every step that runs one after another, at its deadline. */
export const closeWorstCaseMs =
  deadlines.stopReceiving + deadlines.drain + 2 * deadlines.disconnect + deadlines.httpServer + deadlines.appTerminate;

/** After this, a host process stops waiting for close() and exits (only if a step failed to keep its deadline). */
export const closeLimitMs = closeWorstCaseMs + 2000;

/**
 * The steps of a host's close(), each with a deadline: a step that overruns is reported and left behind, so
 * close() always ends. Also knows which steps it is waiting for, for whoever has to give up on close() itself.
 */
export class Shutdown {
  readonly #waiting: string[] = [];

  constructor(private readonly warn: (message: string) => void) {}

  /** The steps being waited for right now. */
  get waiting(): readonly string[] {
    return [...this.#waiting];
  }

  /** Waits for `work` at most `ms`; past that, warns, with `leftBehind` saying what is abandoned, and goes on. */
  async step(name: string, work: Promise<unknown>, ms: number, leftBehind?: () => string): Promise<void> {
    this.#waiting.push(name);
    try {
      if (!(await settlesWithin(work, ms))) {
        const detail = leftBehind ? ` (${leftBehind()})` : '';
        this.warn(`shutdown: ${name} did not finish within ${seconds(ms)}${detail}; going on without it`);
      }
    } finally {
      this.#waiting.splice(this.#waiting.indexOf(name), 1);
    }
  }
}
