const TIMEOUT_MS = 3000;

export type Health = { status: 'ok' | 'unavailable' } & Record<string, 'ok' | 'unavailable'>;

/**
 * Healthy when every dependency answers its probe in time; says which did not. Each probe is bounded, so an
 * unreachable dependency makes the answer slow by at most TIMEOUT_MS.
 */
export async function checkHealth(
  probes: Record<string, () => Promise<unknown>>,
  log: (message: string) => void,
): Promise<Health> {
  const probe = async (name: string, check: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), TIMEOUT_MS))),
      ]);
      return [name, 'ok'] as const;
    } catch (error) {
      // The reason goes to the log, not to an unauthenticated response.
      log(`Health check of ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      return [name, 'unavailable'] as const;
    } finally {
      clearTimeout(timer);
    }
  };
  const results = Object.fromEntries(await Promise.all(Object.entries(probes).map(([n, c]) => probe(n, c))));
  const ok = Object.values(results).every((r) => r === 'ok');
  return { status: ok ? 'ok' : 'unavailable', ...results } as Health;
}
