import { describe, expect, it, vi } from 'vitest';

import { checkHealth } from '../../shared/operations/health';

describe('health', () => {
  it('is ok when every dependency answers', async () => {
    const health = await checkHealth(
      { storage: async () => undefined, broker: async () => undefined },
      () => undefined,
    );
    expect(health).toEqual({ status: 'ok', storage: 'ok', broker: 'ok' });
  });

  it('names each dependency that fails or does not answer within 3 s, and logs why', async () => {
    vi.useFakeTimers();
    try {
      const logged: string[] = [];
      const answer = checkHealth(
        { storage: () => new Promise(() => undefined), broker: () => Promise.reject(new Error('ECONNREFUSED')) },
        (line) => logged.push(line),
      );
      await vi.advanceTimersByTimeAsync(3000);
      expect(await answer).toEqual({ status: 'unavailable', storage: 'unavailable', broker: 'unavailable' });
      expect(logged.sort()).toEqual([
        'Health check of broker failed: ECONNREFUSED',
        'Health check of storage failed: timed out',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
