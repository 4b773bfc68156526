import { lookup } from 'node:dns/promises';
import type { RequestOptions } from 'node:http';
import { type AgentOptions, Agent as HttpsAgent } from 'node:https';
import { BlockList, isIP, isIPv6, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';

/** A server that takes longer than this to accept a TCP connection is skipped for the next one. */
export const CONNECT_TIMEOUT_MS = 3000;
/** The TLS handshake (and a proxy's CONNECT answer) must be done within this. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A CONNECT answer's header larger than this is not one. */
const MAX_PROXY_HEADER = 16 * 1024;

export interface DialTarget {
  host: string;
  port: number;
}

/** What a dial reads from its surroundings: the proxy settings and the name service. */
export interface DialEnvironment {
  env?: NodeJS.ProcessEnv;
  /** Every address of a name, in the resolver's order. */
  resolve?: (host: string) => Promise<string[]>;
}

const resolveAll = async (host: string) => (await lookup(host, { all: true })).map((a) => a.address);

/**
 * Every connection the agent makes goes through here: the pinned first contact, the kept-alive
 * mTLS requests and the WebSocket channel. It tries each address a name resolves to (a dead one
 * costs CONNECT_TIMEOUT_MS, not a request timeout), or tunnels through an HTTP CONNECT proxy when
 * HTTPS_PROXY names one, and then runs TLS end to end with the server, checking the certificate
 * against the name in the URL, never against the address or the proxy.
 *
 * A small CONNECT client rather than https-proxy-agent: that library only covers an https.Agent,
 * while the pinned first contact reads the raw chain off a TLS socket, and the same dialer must
 * also try every DNS address; one code path for all three keeps the proxy rules in one place.
 */
export async function dialTls(
  target: DialTarget,
  tls: ConnectionOptions,
  { env = process.env, resolve = resolveAll }: DialEnvironment = {},
): Promise<TLSSocket> {
  const host = target.host.replace(/^\[|\]$/g, '');
  const proxy = proxyFor({ host, port: target.port }, env);
  const raw = proxy
    ? await connectThroughProxy(proxy, { host, port: target.port }, resolve)
    : await connectAny(host, target.port, resolve);
  return startTls(raw, host, tls);
}

/** The last address of a name that answered, tried first next time: stay with what works. */
const preferred = new Map<string, string>();

/** Connects to the first address of `host` that accepts, trying each in turn. */
async function connectAny(
  host: string,
  port: number,
  resolve: (host: string) => Promise<string[]>,
): Promise<Socket> {
  const addresses = isIP(host) ? [host] : await resolve(host);
  const first = preferred.get(host);
  if (first && addresses.includes(first)) addresses.sort((a, b) => Number(b === first) - Number(a === first));
  const errors: string[] = [];
  let last: Error | undefined;
  for (const address of addresses) {
    try {
      const socket = await connectTcp(address, port);
      preferred.set(host, address);
      return socket;
    } catch (err) {
      last = err as Error;
      errors.push(`${address}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (addresses.length <= 1 && last) throw last;
  throw Object.assign(
    new Error(`no address of ${host} accepted a connection on port ${port} (${errors.join('; ')})`),
    {
      code: (last as NodeJS.ErrnoException | undefined)?.code,
    },
  );
}

function connectTcp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(coded(`connect to ${address}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`, 'ETIMEDOUT'));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function startTls(socket: Socket, host: string, tls: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // `host` is what the certificate is checked against; SNI only for names, as RFC 6066 asks.
    const secure = tlsConnect({ ...tls, socket, host, ...(isIP(host) ? {} : { servername: host }) });
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(coded(`no TLS answer from ${host} within ${HANDSHAKE_TIMEOUT_MS} ms`, 'ETIMEDOUT')),
      HANDSHAKE_TIMEOUT_MS,
    );
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeListener('error', fail);
      resolve(secure);
    });
    secure.once('error', fail);
  });
}

/** The proxy to tunnel through for `target`, from HTTPS_PROXY and NO_PROXY; undefined for direct. */
export function proxyFor(target: DialTarget, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const setting = env.https_proxy || env.HTTPS_PROXY;
  if (!setting) return undefined;
  if (bypassesProxy(target, env.no_proxy ?? env.NO_PROXY ?? '')) return undefined;
  // A bare host:port is what many setups write; it means an http:// proxy.
  const proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(setting) ? setting : `http://${setting}`);
  if (proxy.protocol !== 'http:')
    throw new Error(`HTTPS_PROXY: only http:// proxies are supported (CONNECT), not ${proxy.protocol}//`);
  return proxy;
}

/**
 * NO_PROXY as curl reads it: comma-separated names (a leading dot or `*.` for a domain and its
 * hosts), addresses, CIDR blocks, each with an optional `:port`, or `*` for every host. Loopback is
 * not exempt on its own: CONTRACT section 12 proxies it unless NO_PROXY names it.
 */
export function bypassesProxy(target: DialTarget, noProxy: string): boolean {
  const host = target.host.toLowerCase().replace(/^\[|\]$/g, '');
  for (const raw of noProxy.split(/[\s,]+/).filter(Boolean)) {
    if (raw === '*') return true;
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? /^([^:]+)(?::(\d+))?$/.exec(raw) ?? [raw, raw];
    const [, entryHost = raw, entryPort] = match;
    if (entryPort !== undefined && Number(entryPort) !== target.port) continue;
    const entry = entryHost.toLowerCase().replace(/^\*?\./, '');
    if (entry.includes('/') && isIP(host)) {
      const [base, bits] = entry.split('/');
      const family = isIPv6(base!) ? 'ipv6' : 'ipv4';
      if ((isIPv6(host) ? 'ipv6' : 'ipv4') !== family) continue;
      const block = new BlockList();
      try {
        block.addSubnet(base!, Number(bits), family);
      } catch {
        continue;
      }
      if (block.check(host, family)) return true;
    } else if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** Opens an HTTP CONNECT tunnel to `target` through `proxy`; the TLS inside is the agent's own. */
async function connectThroughProxy(
  proxy: URL,
  target: DialTarget,
  resolve: (host: string) => Promise<string[]>,
): Promise<Socket> {
  const socket = await connectAny(proxy.hostname.replace(/^\[|\]$/g, ''), Number(proxy.port || 80), resolve);
  const authority = `${isIPv6(target.host) ? `[${target.host}]` : target.host}:${target.port}`;
  const credentials = proxy.username
    ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n`
    : '';
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          coded(`the proxy ${proxy.host} did not answer CONNECT within ${HANDSHAKE_TIMEOUT_MS} ms`, 'EPROXY'),
        ),
      HANDSHAKE_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_PROXY_HEADER)
          fail(coded(`the proxy ${proxy.host} sent no CONNECT answer`, 'EPROXY'));
        return;
      }
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.[01] 200\b/.test(status))
        return fail(coded(`the proxy ${proxy.host} refused CONNECT to ${authority}: ${status}`, 'EPROXY'));
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeListener('close', onClose);
      // Bytes after the answer belong to the server's TLS: hand them back to the stream.
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onClose = () =>
      fail(coded(`the proxy ${proxy.host} closed the connection before answering CONNECT`, 'EPROXY'));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onClose);
  });
}

/** An error with a code, so the agent can tell "nothing answered there" from other failures. */
function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * An https.Agent whose connections come from dialTls: every address of the name, the proxy if
 * one applies, the agent's TLS options (its identity and the fleet CA) for every server.
 */
export class DialingAgent extends HttpsAgent {
  constructor(
    private readonly tls: Pick<ConnectionOptions, 'key' | 'cert' | 'ca'>,
    options: AgentOptions = {},
    private readonly dialEnv: DialEnvironment = {},
  ) {
    super({ ...options, ...tls });
  }

  // Node's agent takes the socket through the callback when this returns nothing.
  override createConnection(
    options: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const target = { host: options.host ?? 'localhost', port: Number(options.port ?? 443) };
    dialTls(target, this.tls, this.dialEnv).then(
      (socket) => callback?.(null, socket),
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}
