// Timer schedules as the Functions timer extension reads them: NCRONTAB with seconds
// (`sec min hour day month day-of-week`), the 5-field form without seconds, or a TimeSpan
// (`hh:mm:ss`, `d.hh:mm:ss`). Local time zone.
import { Cron } from 'croner';

export interface Schedule {
  readonly expression: string;
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
}

// As in NCrontab, day-of-month and day-of-week must both match (croner's default, like Vixie cron, is
// either); `5/15` means "from 5, every 15", which croner calls a sloppy range.
const ncrontab = { mode: '6-part', domAndDow: true, sloppyRanges: true } as const;

export function parseSchedule(expression: string): Schedule {
  const trimmed = expression.trim();
  const timeSpan = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})$/.exec(trimmed);
  if (timeSpan) {
    const [, d = '0', h = '0', m = '0', s = '0'] = timeSpan;
    const interval = (((Number(d) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s)) * 1000;
    if (interval <= 0) throw new Error(`invalid schedule "${expression}": interval must be positive`);
    return { expression: trimmed, next: (after) => new Date(after.getTime() + interval) };
  }
  // The 5-field form gets NCrontab's implicit second 0. Counted here, as croner would also name a 7-field
  // form (with a year) that NCRONTAB does not have.
  const fields = trimmed.split(/\s+/);
  if (fields.length === 5) fields.unshift('0');
  if (fields.length !== 6) throw new Error(`invalid schedule "${expression}": expected 6 NCRONTAB fields`);
  let cron: Cron;
  try {
    cron = new Cron(fields.join(' '), ncrontab);
  } catch (err) {
    throw new Error(`invalid schedule "${expression}": ${(err as Error).message}`);
  }
  // A valid pattern can still never occur (30 February); better refused now than failing at its first tick.
  if (cron.nextRun() === null) throw new Error(`invalid schedule "${expression}": it has no occurrence`);
  return {
    expression: trimmed,
    next(after) {
      const next = cron.nextRun(after);
      if (next === null) throw new Error(`schedule "${trimmed}" has no occurrence after ${after.toISOString()}`);
      return next;
    },
  };
}
