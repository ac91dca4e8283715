// Timer schedules as the Functions timer extension reads them: NCRONTAB with seconds
// (`sec min hour day month day-of-week`), the 5-field form without seconds, or a TimeSpan
// (`hh:mm:ss`). Like NCrontab, day-of-month and day-of-week must both match. Local time zone.

export interface Schedule {
  readonly expression: string;
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
}

const monthNames = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const dayNames = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  namesBase?: number;
}

const fields: FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: monthNames, namesBase: 1 },
  // 7 is accepted as Sunday, as in most cron dialects.
  { name: 'day-of-week', min: 0, max: 7, names: dayNames, namesBase: 0 },
];

function parseValue(text: string, spec: FieldSpec): number {
  const byName = spec.names?.indexOf(text.slice(0, 3).toLowerCase()) ?? -1;
  const value = byName >= 0 && /^[a-z]+$/i.test(text) ? byName + (spec.namesBase ?? 0) : Number(text);
  if (!/^[a-z0-9]+$/i.test(text) || !Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw new Error(`invalid ${spec.name} "${text}"`);
  }
  return value;
}

function parseField(text: string, spec: FieldSpec): boolean[] {
  const allowed = new Array<boolean>(spec.max + 1).fill(false);
  for (const item of text.split(',')) {
    const [range = '', stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`invalid step in ${spec.name} "${item}"`);
    let from: number;
    let to: number;
    if (range === '*') {
      from = spec.min;
      to = spec.max;
    } else if (range.includes('-')) {
      const [a = '', b = ''] = range.split('-');
      from = parseValue(a, spec);
      to = parseValue(b, spec);
      if (to < from) throw new Error(`invalid range in ${spec.name} "${item}"`);
    } else {
      from = parseValue(range, spec);
      // `5/15` means "from 5, every 15", as in NCrontab.
      to = stepText === undefined ? from : spec.max;
    }
    for (let v = from; v <= to; v += step) allowed[v] = true;
  }
  return allowed;
}

function cronSchedule(expression: string, parts: string[]): Schedule {
  const [seconds, minutes, hours, days, months, weekdays] = parts.map((p, i) =>
    parseField(p, fields[i] as FieldSpec),
  ) as [boolean[], boolean[], boolean[], boolean[], boolean[], boolean[]];
  if (weekdays[7]) weekdays[0] = true;

  const next = (after: Date): Date => {
    let t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
    // Each miss jumps to the start of the next unit, so even yearly schedules resolve quickly.
    for (let guard = 0; guard < 200_000; guard++) {
      const [y, mo, d, h, mi] = [t.getFullYear(), t.getMonth(), t.getDate(), t.getHours(), t.getMinutes()];
      if (!months[mo + 1]) t = new Date(y, mo + 1, 1);
      else if (!days[d] || !weekdays[t.getDay()]) t = new Date(y, mo, d + 1);
      else if (!hours[h]) t = new Date(y, mo, d, h + 1);
      else if (!minutes[mi]) t = new Date(y, mo, d, h, mi + 1);
      else if (!seconds[t.getSeconds()]) t = new Date(t.getTime() + 1000);
      else return t;
    }
    throw new Error(`schedule "${expression}" has no occurrence`);
  };
  next(new Date());
  return { expression, next };
}

export function parseSchedule(expression: string): Schedule {
  const trimmed = expression.trim();
  const timeSpan = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})$/.exec(trimmed);
  if (timeSpan) {
    const [, d = '0', h = '0', m = '0', s = '0'] = timeSpan;
    const interval = (((Number(d) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s)) * 1000;
    if (interval <= 0) throw new Error(`invalid schedule "${expression}": interval must be positive`);
    return { expression: trimmed, next: (after) => new Date(after.getTime() + interval) };
  }
  const parts = trimmed.split(/\s+/);
  if (parts.length === 5) parts.unshift('0');
  if (parts.length !== 6) throw new Error(`invalid schedule "${expression}": expected 6 NCRONTAB fields`);
  try {
    return cronSchedule(trimmed, parts);
  } catch (err) {
    throw new Error(`invalid schedule "${expression}": ${(err as Error).message}`);
  }
}
