/**
 * One webhook request: a JSON POST that waits at most `timeoutMs` for the answer's status line, never follows a
 * redirect (a 3xx could lead anywhere, past the allowed hosts) and does not read the answer's body. Returns why it
 * failed, or undefined once the receiver answered 2xx.
 */
export async function postWebhook(url: string, payload: unknown, timeoutMs: number): Promise<string | undefined> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'customer-sync-alerts' },
      body: JSON.stringify(payload),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return undefined;
    if (response.status >= 300 && response.status < 400)
      return `answered ${response.status}, a redirect (not followed)`;
    return `answered ${response.status}`;
  } catch (error) {
    const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
    return `could not be reached: ${e.cause?.code ?? e.cause?.message ?? e.message ?? String(error)}`;
  }
}
