import { describe, expect, it } from 'vitest';

import { parseSchedule } from '../../local/host/ncrontab';

// Local time, as the host schedules: these dates are far from any daylight-saving change.
const at = (month: number, day: number, hours = 0, minutes = 0, seconds = 0, ms = 0) =>
  new Date(2025, month - 1, day, hours, minutes, seconds, ms);

/** The next `n` occurrences after `from`. */
function occurrences(expression: string, from: Date, n = 3): Date[] {
  const schedule = parseSchedule(expression);
  const result: Date[] = [];
  for (let after = from; result.length < n;) result.push((after = schedule.next(after)));
  return result;
}

describe('parseSchedule', () => {
  it('reads the 6-field NCRONTAB form, with seconds', () => {
    expect(occurrences('*/15 * * * * *', at(3, 10, 10, 0, 7))).toEqual([
      at(3, 10, 10, 0, 15),
      at(3, 10, 10, 0, 30),
      at(3, 10, 10, 0, 45),
    ]);
    expect(occurrences('5/20 0 12 * * *', at(3, 10, 12), 3)).toEqual([
      at(3, 10, 12, 0, 5),
      at(3, 10, 12, 0, 25),
      at(3, 10, 12, 0, 45),
    ]);
  });

  it('reads the 5-field form as firing at second 0', () => {
    expect(occurrences('30 2 * * *', at(3, 10, 1, 0, 0), 2)).toEqual([at(3, 10, 2, 30), at(3, 11, 2, 30)]);
  });

  it('fires every minute on "0 */1 * * * *" and daily on "0 0 3 * * *"', () => {
    expect(occurrences('0 */1 * * * *', at(3, 10, 23, 58, 30))).toEqual([
      at(3, 10, 23, 59),
      at(3, 11, 0, 0),
      at(3, 11, 0, 1),
    ]);
    expect(occurrences('0 0 3 * * *', at(3, 10, 2, 59, 59), 2)).toEqual([at(3, 10, 3), at(3, 11, 3)]);
  });

  it('reads TimeSpans as an interval from the last occurrence', () => {
    expect(occurrences('00:05:00', at(3, 10, 10), 2)).toEqual([at(3, 10, 10, 5), at(3, 10, 10, 10)]);
    expect(parseSchedule('1.02:00:30').next(at(3, 10))).toEqual(at(3, 11, 2, 0, 30));
    expect(() => parseSchedule('00:00:00')).toThrow(/^invalid schedule "00:00:00": interval must be positive/);
  });

  it('needs day-of-month and day-of-week both to match, as NCrontab does', () => {
    // Friday the 13th: not every 13th, and not every Friday (3 January 2025 is one).
    expect(occurrences('0 0 12 13 * 5', at(1, 1), 2)).toEqual([at(6, 13, 12), new Date(2026, 1, 13, 12)]);
  });

  it('takes month and day names, in any case', () => {
    // Mondays in January: 6 January 2025 is the first.
    expect(occurrences('0 0 9 * jan mon', at(1, 1), 2)).toEqual([at(1, 6, 9), at(1, 13, 9)]);
    expect(occurrences('0 0 9 * JAN MON', at(1, 1), 1)).toEqual([at(1, 6, 9)]);
    expect(occurrences('0 0 9 * * sun', at(1, 1), 1)).toEqual(occurrences('0 0 9 * * 7', at(1, 1), 1));
  });

  it('gives the first occurrence strictly after the time given, on a whole second', () => {
    const schedule = parseSchedule('*/15 * * * * *');
    expect(schedule.next(at(3, 10, 10, 0, 15))).toEqual(at(3, 10, 10, 0, 30));
    expect(schedule.next(at(3, 10, 10, 0, 14, 500))).toEqual(at(3, 10, 10, 0, 15));
    expect(schedule.next(at(3, 10, 10, 0, 15, 1))).toEqual(at(3, 10, 10, 0, 30));
  });

  it('keeps the expression as written, less surrounding spaces', () => {
    expect(parseSchedule('  0 */5 * * * *  ').expression).toBe('0 */5 * * * *');
  });

  it.each([
    'every day',
    '* * * *',
    '0 0 12 1 1 * 2030',
    '@daily',
    '61 * * * * *',
    '0 0 25 * * *',
    '0 0 0 * 13 *',
    '0 0 0 * * funday',
    '*/0 * * * * *',
    '',
  ])('refuses %j with an error naming it', (expression) => {
    expect(() => parseSchedule(expression)).toThrow(
      new RegExp(`^invalid schedule "${expression.replace(/[*/]/g, '\\$&')}": `),
    );
  });

  it('refuses a schedule that never occurs', () => {
    expect(() => parseSchedule('0 0 0 30 2 *')).toThrow(/^invalid schedule "0 0 0 30 2 \*": it has no occurrence$/);
  });
});
