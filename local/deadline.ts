/**
 * Whether `work` settles (resolves or rejects) within `ms`. Running out of time does not cancel the work: the
 * caller goes on without it, and should say so.
 */
export function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const settled = () => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(settled, settled);
  });
}

/** `1.5 s`, for messages about deadlines. */
export const seconds = (ms: number): string => `${ms / 1000} s`;
