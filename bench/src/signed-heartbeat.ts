import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { Agent as HttpAgent, request } from 'node:http';
import { createServer } from 'node:net';
import { signRequest } from '@muster/proto';
import { heartbeat } from './support.js';

/** A loopback port for `--proxied-listen` (the OS picked it, then it was let go). */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface SignedClient {
  agent: HttpAgent;
  key: KeyObject;
  keyid: string;
}

export function signedClient(keyPem: string, certPem: string): SignedClient {
  return {
    agent: new HttpAgent({ keepAlive: true, maxSockets: 1 }),
    key: createPrivateKey(keyPem),
    keyid: new X509Certificate(certPem).serialNumber.toLowerCase(),
  };
}

/**
 * The signed closed loop: each client signs every heartbeat (RFC 9421, as `muster agent
 * --signed-requests` does) and posts it in plain HTTP to `--proxied-listen`, as the TLS proxy
 * in front would forward it; a second of warm-up is not counted.
 */
export async function signedClosedLoop(clients: SignedClient[], base: string, durationMs: number) {
  const url = new URL('/v1/agent/heartbeat', base);
  const warmupMs = 1000;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  let counted = 0;
  let failed = 0;
  let total = 0;
  await Promise.all(
    clients.map(async (client, i) => {
      let seq = i * 1_000_000;
      while (performance.now() < end) {
        try {
          const status = await postSigned(url, heartbeat(seq++), client);
          total++;
          const now = performance.now();
          if (now < measureFrom || now > end) continue;
          if (status === 202) counted++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rate: counted / (durationMs / 1000), failed, total };
}

function postSigned(url: URL, body: unknown, client: SignedClient): Promise<number> {
  const payload = Buffer.from(JSON.stringify(body));
  const signed = signRequest(
    { method: 'POST', authority: url.host, target: url.pathname },
    payload,
    client.key,
    client.keyid,
  );
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: client.agent,
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...signed },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
