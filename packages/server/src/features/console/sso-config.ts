import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawSettings } from '@muster/host';

/** The path the identity provider sends the browser back to: a console page that finishes sign-in. */
export const SSO_REDIRECT_PATH = '/signin/sso';

/** Console single sign-on, as `--oidc-*` configure it. */
export interface SsoSettings {
  /** The OpenID provider's issuer identifier, as its discovery document must repeat it. */
  readonly issuer: string;
  readonly clientId: string;
  /** Read from `--oidc-client-secret-file` at start. */
  readonly clientSecret: string;
  /** Set by `--oidc-redirect-url`; otherwise the admin plane's own address (see app.ts). */
  readonly redirectUrl?: string;
}

const loopbackHost = (host: string) =>
  host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

function urlOf(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/**
 * Reads `--oidc-issuer`, `--oidc-client-id`, `--oidc-client-secret-file` and `--oidc-redirect-url`.
 * The first three go together; the secret comes only from a file. Problems go into `problems`.
 */
export function readSsoSettings(
  raw: RawSettings,
  cwd: string,
  problems: string[],
  admin: { listenHost: string; behindProxy: boolean },
): SsoSettings | undefined {
  const str = (flag: string) => raw[flag] as string | undefined;
  const issuer = str('oidc-issuer');
  const clientId = str('oidc-client-id');
  const secretFile = str('oidc-client-secret-file');
  const redirect = str('oidc-redirect-url');
  const given = [issuer, clientId, secretFile].filter((v) => v !== undefined).length;
  if (given === 0) {
    if (redirect !== undefined) problems.push('--oidc-redirect-url needs --oidc-issuer');
    return undefined;
  }
  if (given < 3) {
    problems.push('--oidc-issuer, --oidc-client-id and --oidc-client-secret-file go together');
    return undefined;
  }
  const before = problems.length;
  const issuerUrl = urlOf(issuer!);
  if (
    !issuerUrl ||
    !(issuerUrl.protocol === 'https:' || (issuerUrl.protocol === 'http:' && loopbackHost(issuerUrl.hostname)))
  )
    problems.push(`--oidc-issuer: "${issuer}" is not an https:// URL (http:// is allowed only on loopback)`);
  else if (issuerUrl.search || issuerUrl.hash)
    problems.push(`--oidc-issuer: "${issuer}" must not carry a query or fragment`);
  if (!/^[\x21-\x7e]{1,255}$/.test(clientId!))
    problems.push('--oidc-client-id: expected 1 to 255 printable characters without spaces');
  let clientSecret = '';
  try {
    clientSecret = readFileSync(resolve(cwd, secretFile!), 'utf8').trim();
    if (clientSecret === '') problems.push(`--oidc-client-secret-file: ${secretFile} is empty`);
  } catch (err) {
    problems.push(
      `--oidc-client-secret-file: cannot read ${secretFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let redirectUrl: string | undefined;
  if (redirect !== undefined) {
    const url = urlOf(redirect);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:'))
      problems.push(`--oidc-redirect-url: "${redirect}" is not an http(s):// URL`);
    else if (url.pathname !== SSO_REDIRECT_PATH || url.search || url.hash)
      problems.push(
        `--oidc-redirect-url: "${redirect}" must end in ${SSO_REDIRECT_PATH}, the console page that finishes sign-in`,
      );
    else redirectUrl = url.href;
  } else if (admin.behindProxy || ['', '0.0.0.0', '::'].includes(admin.listenHost)) {
    problems.push(
      '--oidc-redirect-url is needed when the admin plane listens on a wildcard address or behind a proxy: give the console address browsers use, ending in /signin/sso',
    );
  }
  if (problems.length > before) return undefined;
  return Object.freeze({
    issuer: issuerUrl!.href,
    clientId: clientId!,
    clientSecret,
    ...(redirectUrl ? { redirectUrl } : {}),
  });
}

/**
 * Where the identity provider sends the browser back: `--oidc-redirect-url`, or the admin plane's
 * own listen address and bound port (its port may have been 0 until it listened).
 */
export function ssoRedirectUrl(
  settings: Pick<SsoSettings, 'redirectUrl'>,
  tls: boolean,
  listenHost: string,
  bound: unknown,
): string {
  if (settings.redirectUrl) return settings.redirectUrl;
  const port = (bound as { port?: number } | null)?.port ?? 0;
  const host = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  return `${tls ? 'https' : 'http'}://${host}:${port}${SSO_REDIRECT_PATH}`;
}
