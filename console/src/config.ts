/** What index.html tells the page (shared/http/console.ts fills it in per response). */
export type ConsoleConfig =
  { signIn: 'token' } | { signIn: 'entra'; clientId: string; authority: string; scopes: string[] };

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';

export function readConfig(): ConsoleConfig {
  try {
    const parsed = JSON.parse(meta('console-config')) as ConsoleConfig;
    if (parsed.signIn === 'entra' || parsed.signIn === 'token') return parsed;
  } catch {
    // served without a config (a file opened directly): the local sign-in
  }
  return { signIn: 'token' };
}

/** The nonce the Content-Security-Policy allows for the `<style>` elements Fluent inserts. */
export const cspNonce = () => meta('csp-nonce');

/** The API's base URL: the page is served at `<base>/console/`. */
export const apiBase = () => new URL('../', document.baseURI).href.replace(/\/$/, '');
