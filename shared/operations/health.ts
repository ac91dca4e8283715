import type { SyncContext } from './context';

const TIMEOUT_MS = 3000;

/** Healthy when storage and the broker both answer in time; says which one did not. */
export async function checkHealth(ctx: SyncContext) {
  const probe = async (check: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), TIMEOUT_MS))),
      ]);
      return 'ok';
    } catch (error) {
      // The reason goes to the log, not to an unauthenticated response.
      ctx.log(`Health check failed: ${error instanceof Error ? error.message : String(error)}`);
      return 'unavailable';
    } finally {
      clearTimeout(timer);
    }
  };
  const [storage, broker] = await Promise.all([probe(() => ctx.store.ping()), probe(() => ctx.doorbell.check())]);
  return { status: storage === 'ok' && broker === 'ok' ? 'ok' : 'unavailable', storage, broker };
}
