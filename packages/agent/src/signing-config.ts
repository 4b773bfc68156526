import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawSettings, SettingSpec } from '@muster/host';

/** `--signed-requests` and `--proxy-ca` (CONTRACT section 12). */
export const SIGNED_SETTINGS: readonly SettingSpec[] = [
  {
    flag: 'signed-requests',
    env: 'MUSTER_SIGNED_REQUESTS',
    kind: 'boolean',
    help: "sign every request and the channel upgrade with the node key (RFC 9421), for a TLS-terminating proxy in front of the server's --proxied-listen; the --ca-pin is then checked against the CA bundle the enrollment answer carries",
  },
  {
    flag: 'proxy-ca',
    env: 'MUSTER_PROXY_CA',
    kind: 'string',
    value: 'FILE',
    help: "CA certificate(s) the TLS proxy's certificate chains to, with --signed-requests (default: the system store)",
  },
];

export function signedSettings(
  raw: RawSettings,
  cwd: string,
  request: boolean,
  problems: string[],
): { signedRequests: boolean; proxyCa?: string } {
  const signedRequests = raw['signed-requests'] === true;
  const file = raw['proxy-ca'] as string | undefined;
  if (file !== undefined && !signedRequests)
    problems.push(
      '--proxy-ca is only used with --signed-requests (without it the agent trusts the fleet CA alone)',
    );
  if (signedRequests && request)
    problems.push(
      '--signed-requests works with a join token (--token-file) or a --grant, not with --request, whose first contact is pinned at the TLS layer',
    );
  if (file === undefined) return { signedRequests };
  let proxyCa: string | undefined;
  try {
    proxyCa = readFileSync(resolve(cwd, file), 'utf8');
  } catch (err) {
    problems.push(`--proxy-ca: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (proxyCa !== undefined && !/-----BEGIN CERTIFICATE-----/.test(proxyCa))
    problems.push(`--proxy-ca: ${file} holds no PEM certificate`);
  return { signedRequests, ...(proxyCa ? { proxyCa } : {}) };
}
