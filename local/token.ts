import { ROLES } from '../shared/http/auth';
import { signDevToken } from './dev-token';
import { localSettings } from './settings';

/**
 * `npm run --silent token -- <role> [--channel <id>] [--hours <n>]` prints a bearer token the local stack
 * accepts (HS256 with AUTH_DEV_SECRET from local.settings.json). Production accepts only Entra ID tokens.
 */
function main(args: string[]): number {
  const role = args[0];
  const option = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const channel = option('channel');
  const hours = Number(option('hours') ?? 8);
  if (!role || !(ROLES as readonly string[]).includes(role) || !(hours > 0)) {
    console.error(`usage: npm run --silent token -- <${ROLES.join('|')}> [--channel <id>] [--hours <n>]`);
    return 2;
  }
  if (role === 'Channel' && !channel) {
    console.error('A Channel token names its channel: add --channel <id> (for example --channel web).');
    return 2;
  }
  const settings = localSettings();
  const secret = settings.AUTH_DEV_SECRET;
  if (!secret || !settings.AUTH_ISSUER || !settings.AUTH_AUDIENCE) {
    console.error('AUTH_DEV_SECRET, AUTH_ISSUER and AUTH_AUDIENCE must be set (see local.settings.json).');
    return 2;
  }
  const claims = {
    iss: settings.AUTH_ISSUER,
    aud: settings.AUTH_AUDIENCE,
    sub: channel ? `channel:${channel}` : `local:${role}`,
    roles: [role],
    ...(channel ? { [settings.AUTH_CHANNEL_CLAIM || 'channel']: channel } : {}),
  };
  console.log(signDevToken(secret, claims, hours * 3600));
  return 0;
}

process.exitCode = main(process.argv.slice(2));
