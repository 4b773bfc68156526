import type { RawSettings } from '@muster/host';
import type { HostPort } from '../../config.js';
import { TrustedProxies } from '../../http/trusted-proxies.js';

/** `--proxied-listen` and `--trusted-proxy` (CONTRACT section 12), read and checked together. */
export interface ProxiedSettings {
  /** The plain-HTTP agent plane a TLS-terminating proxy forwards to. */
  readonly proxiedListen?: HostPort;
  /** Addresses and CIDR blocks of the proxies in front. */
  readonly trustedProxies?: readonly string[];
}

export function proxiedSettings(
  raw: RawSettings,
  parseHostPort: (text: string) => HostPort | undefined,
  problems: string[],
): ProxiedSettings {
  const trustedProxies = (raw['trusted-proxy'] as string[] | undefined) ?? [];
  for (const entry of trustedProxies) {
    try {
      new TrustedProxies([entry]);
    } catch {
      problems.push(`--trusted-proxy: "${entry}" is not an IP address or CIDR block (such as 10.0.0.0/8)`);
    }
  }
  const text = raw['proxied-listen'] as string | undefined;
  if (text === undefined) {
    if (trustedProxies.length > 0)
      problems.push('--trusted-proxy is only used with --proxied-listen, which it was given without');
    return { trustedProxies };
  }
  // A bare port binds loopback: the proxy usually runs on the same host.
  const proxiedListen = parseHostPort(/^\d+$/.test(text) ? `127.0.0.1:${text}` : text);
  if (!proxiedListen) problems.push(`--proxied-listen: "${text}" is not HOST:PORT (or a port on loopback)`);
  if (trustedProxies.length === 0)
    problems.push(
      '--proxied-listen needs at least one --trusted-proxy ADDR (the address of the TLS proxy that forwards to it)',
    );
  return { ...(proxiedListen ? { proxiedListen } : {}), trustedProxies };
}
