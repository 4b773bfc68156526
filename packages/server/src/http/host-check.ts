import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { FastifyRequest } from 'fastify';
import { AppError, BadRequestError } from '../errors.js';

const WILDCARD_LISTEN = new Set(['', '0.0.0.0', '::']);
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** A Host header (or a URL's host) split into its lowercased name and its port, if it has one. */
export function parseHost(text: string): { name: string; port?: string } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match) return undefined;
  const name = (match[1] ?? match[2]!).toLowerCase().replace(/\.$/, '');
  if (name === '' || (match[1] !== undefined && isIP(name) !== 6)) return undefined;
  return match[3] === undefined ? { name } : { name, port: match[3] };
}

/** What the admin plane is configured to be reached by. */
export interface AdminHostConfig {
  adminListen: { host: string };
  publicUrl?: string;
  sans: readonly string[];
  /** `--admin-host`: names a proxy in front of the admin plane forwards. */
  adminHosts: readonly string[];
}

/**
 * The names and addresses the admin plane answers to. A DNS-rebinding page reaches the admin
 * plane under its own name (`Host: evil.example`), so anything not configured here is refused,
 * and a console request's `Origin` must name one of these too.
 */
export class AdminHosts {
  private readonly exact = new Set<string>();
  private readonly wildcards: string[] = [];
  private readonly proxied = new Set<string>();

  constructor(names: Iterable<string>, proxied: Iterable<string> = []) {
    for (const name of names) this.add(name);
    for (const name of proxied) {
      this.add(name);
      this.proxied.add(name.toLowerCase());
    }
  }

  /**
   * The `--admin-listen` host (on a wildcard address: every address of this host's interfaces,
   * and its hostname), `--public-url`'s host, every `--san`, `--admin-host` and loopback.
   */
  static from(config: AdminHostConfig): AdminHosts {
    const names = [...LOOPBACK_NAMES, ...config.sans, hostname()];
    if (!WILDCARD_LISTEN.has(config.adminListen.host)) names.push(config.adminListen.host);
    else {
      for (const list of Object.values(networkInterfaces()))
        for (const address of list ?? []) names.push(address.address.replace(/%.*$/, ''));
    }
    if (config.publicUrl) names.push(new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, ''));
    return new AdminHosts(names, config.adminHosts);
  }

  private add(name: string): void {
    const lower = name.toLowerCase().replace(/\.$/, '');
    if (lower.startsWith('*.')) this.wildcards.push(lower.slice(1));
    else if (lower !== '') this.exact.add(lower);
  }

  /** True for a configured name or address, a SAN wildcard's one-label match, or a loopback address. */
  allows(name: string): boolean {
    if (this.exact.has(name) || /^127\.\d+\.\d+\.\d+$/.test(name)) return true;
    return this.wildcards.some(
      (suffix) => name.endsWith(suffix) && !name.slice(0, -suffix.length).includes('.'),
    );
  }

  /**
   * True when a browser's `Origin` is the console's own: an allowed name, on the port the request
   * was addressed to (a page on another port of the same host is another origin). Behind a proxy
   * (`--admin-host`) the port the browser used is the proxy's, so only the name is compared.
   */
  originAllowed(origin: string, hostHeader: string | undefined): boolean {
    let from: URL;
    try {
      from = new URL(origin);
    } catch {
      return false;
    }
    if (from.protocol !== 'http:' && from.protocol !== 'https:') return false;
    const name = from.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (!this.allows(name)) return false;
    if (this.proxied.has(name)) return true;
    try {
      // Through URL on both sides, so a default port written out (":80") compares equal.
      return new URL(`${from.protocol}//${hostHeader}`).port === from.port;
    } catch {
      return false;
    }
  }
}

/**
 * The admin plane's first check, before any credential: a request must name this admin plane
 * in `Host`. Missing or malformed → 400; another name → 421 (Misdirected Request).
 */
export function hostCheck(hosts: AdminHosts): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const header = request.headers.host;
    const host = header === undefined ? undefined : parseHost(header);
    if (!host)
      throw new BadRequestError('the request needs a Host header naming this admin plane', 'bad_host');
    if (!hosts.allows(host.name)) {
      throw new AppError(
        421,
        'misdirected_request',
        'this admin plane answers only to its configured names (--admin-listen, --public-url, --san, --admin-host) and loopback; the Host header named another',
      );
    }
  };
}
