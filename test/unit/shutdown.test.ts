import { describe, expect, it } from 'vitest';

import { Shutdown } from '../../local/host/shutdown';

describe('Shutdown', () => {
  it('waits for a step that finishes in time, without a word', async () => {
    const warnings: string[] = [];
    const shutdown = new Shutdown((m) => warnings.push(m));
    await shutdown.step('quick', new Promise((resolve) => setTimeout(resolve, 10)), 1000);
    await shutdown.step('failing', Promise.reject(new Error('no matter')), 1000);
    expect(warnings).toEqual([]);
  });

  it('goes on without a step that overruns its deadline, saying what it leaves behind', async () => {
    const warnings: string[] = [];
    const shutdown = new Shutdown((m) => warnings.push(m));
    const started = Date.now();
    await shutdown.step('stuck', new Promise(() => undefined), 200, () => 'message m-1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(warnings).toEqual(['shutdown: stuck did not finish within 0.2 s (message m-1); going on without it']);
  });

  it('knows which steps it is waiting for', async () => {
    const shutdown = new Shutdown(() => undefined);
    let finish: () => void = () => undefined;
    const a = shutdown.step('a', new Promise<void>((resolve) => (finish = resolve)), 1000);
    const b = shutdown.step('b', new Promise(() => undefined), 50);
    expect(shutdown.waiting).toEqual(['a', 'b']);
    await b;
    expect(shutdown.waiting).toEqual(['a']);
    finish();
    await a;
    expect(shutdown.waiting).toEqual([]);
  });
});
