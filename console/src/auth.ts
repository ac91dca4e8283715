import type { ConsoleConfig } from './config';

/**
 * Who is signed in and how to get a token for the API. Locally the link `npm start` prints carries a token in
 * its fragment (`#token=…`): it is taken from there, kept in sessionStorage (this tab only) and removed from the
 * address. With Entra ID configured, MSAL signs the user in (authorization code + PKCE, redirect flow).
 * The roles are decoded from the token for display only (which controls to show); the API enforces them.
 */
export type Role = 'Sync.Reader' | 'Sync.Operator' | 'Channel';

export interface Session {
  user: string;
  roles: string[];
  canRepair: boolean;
  token(): Promise<string>;
  signOut(): Promise<void>;
}

const STORAGE_KEY = 'customer-sync.token';

export function decodeClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const text = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function sessionOf(token: string, signOut: () => Promise<void>, fresh: () => Promise<string>): Session {
  const claims = decodeClaims(token);
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
  const user = String(claims.name ?? claims.preferred_username ?? claims.upn ?? claims.sub ?? 'signed in');
  return { user, roles, canRepair: roles.includes('Sync.Operator'), token: fresh, signOut };
}

/** The token from `#token=…`, moved out of the address into sessionStorage. */
function tokenFromLink(): string | undefined {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (match?.[1]) {
    sessionStorage.setItem(STORAGE_KEY, decodeURIComponent(match[1]));
    window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}#/operations`);
  }
  return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
}

/** Signs in; undefined when there is no way to (a local console opened without its link). */
export async function signIn(config: ConsoleConfig): Promise<Session | undefined> {
  if (config.signIn === 'token') {
    const token = tokenFromLink();
    if (!token) return undefined;
    const signOut = async () => {
      sessionStorage.removeItem(STORAGE_KEY);
      window.location.reload();
    };
    return sessionOf(token, signOut, async () => token);
  }
  // MSAL is loaded only where it is used (a chunk of its own).
  const { PublicClientApplication, InteractionRequiredAuthError } = await import('@azure/msal-browser');
  const redirectUri = `${window.location.origin}${window.location.pathname}`;
  const msal = new PublicClientApplication({
    auth: { clientId: config.clientId, authority: config.authority, redirectUri },
    cache: { cacheLocation: 'sessionStorage' },
  });
  await msal.initialize();
  const redirect = await msal.handleRedirectPromise();
  const account = redirect?.account ?? msal.getAllAccounts()[0];
  if (!account) {
    await msal.loginRedirect({ scopes: config.scopes, state: window.location.hash });
    return new Promise(() => undefined); // the browser leaves the page
  }
  if (redirect?.state && redirect.state.startsWith('#/')) window.history.replaceState(null, '', redirect.state);
  msal.setActiveAccount(account);
  const acquire = async () => {
    try {
      return (await msal.acquireTokenSilent({ scopes: config.scopes, account })).accessToken;
    } catch (error) {
      if (error instanceof InteractionRequiredAuthError) {
        await msal.acquireTokenRedirect({ scopes: config.scopes, account, state: window.location.hash });
      }
      throw error;
    }
  };
  const first = await acquire();
  return sessionOf(first, () => msal.logoutRedirect({ account }), acquire);
}
