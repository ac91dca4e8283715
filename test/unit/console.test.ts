import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { consoleServer, consoleSite, contentSecurityPolicy } from '../../shared/http/console';

describe('the operator console page', () => {
  it('signs in with the link’s token unless Entra ID is configured, then with MSAL against the tenant', () => {
    const unset = { CONSOLE_AUTHORITY_HOST: 'https://login.microsoftonline.com', AUTH_AUDIENCE: 'api://cs' };
    expect(consoleSite(unset).config).toEqual({ signIn: 'token' });
    expect(consoleSite({ ...unset, CONSOLE_CLIENT_ID: 'c' }).config).toEqual({ signIn: 'token' }); // no tenant
    const entra = consoleSite({ ...unset, CONSOLE_CLIENT_ID: 'client', CONSOLE_TENANT_ID: 'contoso.dk' });
    expect(entra.config).toEqual({
      signIn: 'entra',
      clientId: 'client',
      authority: 'https://login.microsoftonline.com/contoso.dk',
      scopes: ['api://cs/.default'],
    });
    expect(entra.identityOrigins).toEqual(['https://login.microsoftonline.com']);
  });

  it('allows no inline script, connects only to itself and the identity platform, and cannot be framed', () => {
    const local = contentSecurityPolicy('n0nce', []);
    expect(local).toContain("script-src 'self'");
    expect(local).toContain("style-src 'self' 'nonce-n0nce'");
    expect(local).toContain("connect-src 'self';");
    expect(local).toContain("frame-ancestors 'none'");
    expect(contentSecurityPolicy('n', ['https://login.microsoftonline.com'])).toContain(
      "connect-src 'self' https://login.microsoftonline.com;",
    );
  });

  it('serves only the built files: the page no-cache with a fresh nonce and its config, hashed files immutable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(
      join(dir, 'index.html'),
      '<meta name="csp-nonce" content="%CSP_NONCE%"><meta name="console-config" content="%CONSOLE_CONFIG%">',
    );
    writeFileSync(join(dir, 'assets', 'console-ABCDEFGH.js'), 'export {}');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
    const serve = consoleServer(dir, { config: { signIn: 'token' }, identityOrigins: [] });

    const one = serve('http://h/api/console/', '');
    const two = serve('http://h/api/console/', '');
    expect(one.status).toBe(200);
    expect(one.headers!['Cache-Control']).toBe('no-cache');
    const nonce = /'nonce-([^']+)'/.exec(one.headers!['Content-Security-Policy']!)![1]!;
    expect(one.body).toContain(`content="${nonce}"`);
    expect(one.body).toContain('content="{&quot;signIn&quot;:&quot;token&quot;}"');
    expect(two.headers!['Content-Security-Policy']).not.toContain(nonce);

    expect(serve('http://h/api/console', '')).toMatchObject({ status: 308, headers: { Location: '/api/console/' } });
    expect(serve('http://h/x', 'assets/console-ABCDEFGH.js').headers!['Cache-Control']).toBe(
      'public, max-age=31536000, immutable',
    );
    expect(serve('http://h/x', 'favicon.svg').headers!['Cache-Control']).toBe('no-cache');
    expect(serve('http://h/x', '../index.html').status).toBe(404);
    expect(serve('http://h/x', 'assets/../../etc/passwd').status).toBe(404);
  });
});
