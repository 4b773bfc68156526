import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '@muster/host';
import type { LoginResponse } from '@muster/proto';
import { CertificateAuthority } from '../pki/ca.js';
import type { HttpsResult } from './harness.js';

/**
 * An operator's own CA and an admin-plane certificate from it for 127.0.0.1, written where
 * `--admin-cert/--admin-key` can read them: the admin plane then serves HTTPS on loopback too.
 */
export async function adminTls(dir: string): Promise<{ cert: string; key: string; caPem: string }> {
  const now = Date.now();
  const { ca } = CertificateAuthority.create({
    now,
    lifetimeMs: 86_400_000,
    trustDomain: 'admin.test',
    serial: '0a'.repeat(16),
  });
  const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const issued = ca.issueServerCertificate({
    keyPem,
    sans: ['127.0.0.1'],
    serial: '0b'.repeat(16),
    now,
    lifetimeMs: 86_400_000,
  });
  const cert = join(dir, 'admin-tls.pem');
  const key = join(dir, 'admin-tls.key');
  await writeFile(cert, issued.pem, { mode: 0o600 });
  await writeFile(key, keyPem, { mode: 0o600 });
  return { cert, key, caPem: ca.pem };
}

/** A user's side of `muster login`: a fresh key and a CSR for it. */
export async function loginKey(): Promise<{ keyPem: string; csr: string }> {
  const keys = await generateKeyPair();
  return { keyPem: exportPrivateKeyPem(keys.privateKey), csr: createCsrPem(keys, 'muster-login') };
}

/** One request to the HTTPS admin plane, presenting a client certificate when given, from a chosen loopback address. */
export function adminTlsRequest(
  url: string,
  opts: {
    ca: string;
    method?: string;
    body?: unknown;
    cert?: string;
    key?: string;
    headers?: Record<string, string>;
    localAddress?: string;
  },
): Promise<HttpsResult> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? (payload ? 'POST' : 'GET'),
        agent: false,
        ca: opts.ca,
        ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        headers: {
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
            : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = body ? JSON.parse(body) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, body, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The certificate and key a user holds after a login that succeeded. */
export interface HeldCertificate {
  cert: string;
  key: string;
  serial: string;
}

export function held(answer: LoginResponse, keyPem: string): HeldCertificate {
  return { cert: answer.certificate, key: keyPem, serial: answer.serial };
}
