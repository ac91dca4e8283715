import { spawn } from 'node:child_process';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { stopChild } from '../../local/processes';

/** A node process that says "ready" once it handles SIGTERM with `onSigterm` (code run in the child). */
async function child(onSigterm: string) {
  const script = `process.on('SIGTERM', () => { ${onSigterm} }); setInterval(() => {}, 1000); console.log('ready');`;
  const spawned = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => spawned.stdout.once('data', resolve));
  return spawned;
}

describe('stopChild', () => {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  afterEach(() => warn.mockClear());

  it('lets a process that exits on SIGTERM exit by itself, without a word', async () => {
    const proc = await child('process.exit(0)');
    await stopChild(proc, { name: 'polite', graceMs: 5000 });
    expect(proc.exitCode).toBe(0);
    expect(warn).not.toHaveBeenCalled();
  });

  it('kills a process that ignores SIGTERM once the grace is over, and says so', async () => {
    const proc = await child('/* ignored */');
    const started = Date.now();
    await stopChild(proc, { name: 'stubborn', graceMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(proc.signalCode).toBe('SIGKILL');
    expect(warn).toHaveBeenCalledWith(
      `stubborn (pid ${proc.pid}) did not exit within 0.3 s of SIGTERM: killed it with SIGKILL`,
    );
  });

  it('kills at once when asked to, as a crash would', async () => {
    const proc = await child('/* ignored */');
    await stopChild(proc, { kill: true });
    expect(proc.signalCode).toBe('SIGKILL');
    expect(warn).not.toHaveBeenCalled();
  });

  it('returns at once for a process that has already exited', async () => {
    const proc = await child('process.exit(0)');
    await stopChild(proc);
    await stopChild(proc);
    expect(proc.exitCode).toBe(0);
  });
});
