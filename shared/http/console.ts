import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

import type { Settings } from '../config';
import type { HttpResult } from './problem';

/**
 * The operator console (DESIGN.md §9), as `GET /api/console/{*path}` serves it: the page that `npm run build`
 * bundles into dist/console (console/build.ts). It is a page, not an API endpoint: loading it needs no token (the
 * page calls the API with the signed-in user's token), so it is registered without an endpoint descriptor and is
 * deliberately not in the OpenAPI document.
 *
 * Caching: the bundle's files carry a content hash in their names and are immutable; index.html is `no-cache`,
 * so a deployment is seen at the next load. Security: a Content-Security-Policy that allows scripts only from
 * the app itself (no inline script), styles from the app and from the `<style>` elements Fluent's CSS-in-JS
 * inserts with this response's nonce, connections to the API and, with Entra ID sign-in configured, to the
 * identity platform; the page cannot be framed.
 */

/** What the page is told about sign-in, in a `<meta name="console-config">` of index.html. */
export type ConsoleConfig =
  { signIn: 'token' } | { signIn: 'entra'; clientId: string; authority: string; scopes: string[] };

export interface ConsoleSite {
  config: ConsoleConfig;
  /** The origins the page may connect to besides its own (the identity platform), for the CSP. */
  identityOrigins: string[];
}

/**
 * The console's sign-in settings: Entra ID (MSAL, authorization code with PKCE) when `CONSOLE_CLIENT_ID` and
 * `CONSOLE_TENANT_ID` are set, else the token in the link's fragment (local development).
 */
export function consoleSite(
  s: Pick<
    Settings,
    'CONSOLE_CLIENT_ID' | 'CONSOLE_TENANT_ID' | 'CONSOLE_AUTHORITY_HOST' | 'CONSOLE_SCOPE' | 'AUTH_AUDIENCE'
  >,
): ConsoleSite {
  if (!s.CONSOLE_CLIENT_ID || !s.CONSOLE_TENANT_ID) return { config: { signIn: 'token' }, identityOrigins: [] };
  const host = new URL(s.CONSOLE_AUTHORITY_HOST);
  const scope = s.CONSOLE_SCOPE ?? `${s.AUTH_AUDIENCE}/.default`;
  return {
    config: {
      signIn: 'entra',
      clientId: s.CONSOLE_CLIENT_ID,
      authority: new URL(s.CONSOLE_TENANT_ID, host).href,
      scopes: [scope],
    },
    identityOrigins: [host.origin],
  };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** A file name with a content hash (`console-3F2A9BC1.js`): its content never changes. */
const HASHED = /-[A-Z0-9]{8,}\.[a-z]+$/;

interface Asset {
  type: string;
  body: Buffer;
  immutable: boolean;
}

/** The built files, read once; only these names are ever served (no path reaches the file system). */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const name = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(name);
      else if (TYPES[extname(name)] && name !== 'index.html') {
        assets.set(name, {
          type: TYPES[extname(name)]!,
          body: readFileSync(join(dir, name)),
          immutable: HASHED.test(name),
        });
      }
    }
  };
  walk('');
  return assets;
}

const escapeAttribute = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function contentSecurityPolicy(nonce: string, identityOrigins: string[]): string {
  const identity = identityOrigins.join(' ');
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${identity ? ` ${identity}` : ''}`,
    `frame-src ${identity || "'none'"}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
  ].join('; ');
}

const COMMON = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };

/** Serves the built console from `dir` (dist/console). */
export function consoleServer(dir: string, site: ConsoleSite): (url: string, path: string) => HttpResult {
  let template: string | undefined;
  let assets: Map<string, Asset> | undefined;
  const load = () => {
    if (template === undefined) {
      try {
        template = readFileSync(join(dir, 'index.html'), 'utf8');
        assets = loadAssets(dir);
      } catch {
        return false;
      }
    }
    return true;
  };
  const text = (status: number, body: string): HttpResult => ({
    status,
    headers: { ...COMMON, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' },
    body,
  });

  return (url, path) => {
    if (!load()) return text(404, 'The console is not built: run npm run build.');
    if (path === '' || path === 'index.html') {
      const pathname = new URL(url).pathname;
      // Relative asset links need the trailing slash: /api/console → /api/console/ (the fragment stays with the
      // browser, which keeps it across a redirect).
      if (path === '' && !pathname.endsWith('/')) {
        return { status: 308, headers: { ...COMMON, Location: `${pathname}/`, 'Cache-Control': 'no-store' } };
      }
      const nonce = randomBytes(18).toString('base64');
      const html = template!
        .replace('%CSP_NONCE%', nonce)
        .replace('%CONSOLE_CONFIG%', escapeAttribute(JSON.stringify(site.config)));
      return {
        status: 200,
        headers: {
          ...COMMON,
          'Content-Type': TYPES['.html']!,
          'Cache-Control': 'no-cache',
          'Content-Security-Policy': contentSecurityPolicy(nonce, site.identityOrigins),
          'X-Frame-Options': 'DENY',
        },
        body: html,
      };
    }
    const asset = assets!.get(path);
    if (!asset) return text(404, `No such file in the console: ${path}`);
    return {
      status: 200,
      headers: {
        ...COMMON,
        'Content-Type': asset.type,
        'Cache-Control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      },
      body: asset.body.toString('utf8'),
    };
  };
}
