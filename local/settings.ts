import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { signDevToken } from './dev-token';

/** local.settings.json `Values`, overridden by real environment variables — the same precedence as Core Tools. */
export function localSettings(appRoot = process.cwd()): Record<string, string> {
  let values: Record<string, string> = {};
  try {
    const file = JSON.parse(readFileSync(join(appRoot, 'local.settings.json'), 'utf8')) as {
      Values?: Record<string, string>;
    };
    values = file.Values ?? {};
  } catch {
    // no local.settings.json: environment only
  }
  const merged: Record<string, string> = { ...values };
  for (const key of Object.keys(values)) {
    const fromEnv = process.env[key];
    if (fromEnv !== undefined) merged[key] = fromEnv;
  }
  return merged;
}

/** A token the local stack accepts (HS256 with AUTH_DEV_SECRET), for tests and the benchmark. */
export function devToken(settings: Record<string, string>, role: string, channel?: string): string {
  return signDevToken(settings.AUTH_DEV_SECRET!, {
    iss: settings.AUTH_ISSUER!,
    aud: settings.AUTH_AUDIENCE!,
    roles: [role],
    ...(channel ? { channel } : {}),
  });
}
