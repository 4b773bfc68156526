import { type Agent, request as httpsRequest } from 'node:https';
import type { Problem } from '@muster/proto';

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

/** The server answered with an error; `problem` holds its RFC 9457 document when it sent one. */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem> | undefined,
    readonly retryAfterSec?: number,
  ) {
    super(problem?.detail ?? `server answered ${status}`);
    this.name = 'ServerError';
  }
}

/**
 * One JSON request over HTTPS. TLS settings come from the caller (an https.Agent that holds the
 * node's identity, or pinned trust for first contact); the answer is parsed and errors raised.
 */
export function requestJson<T>(
  url: URL,
  opts: {
    method: 'GET' | 'POST';
    body?: unknown;
    agent?: Agent;
    ca?: string;
    timeoutMs?: number;
    signal?: AbortSignal;
  },
): Promise<JsonResponse<T>> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method,
        ...(opts.agent ? { agent: opts.agent } : { agent: false }),
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: opts.timeoutMs ?? 15_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const retryAfter = Number(res.headers['retry-after']);
            reject(
              new ServerError(
                status,
                body as Partial<Problem> | undefined,
                Number.isFinite(retryAfter) ? retryAfter : undefined,
              ),
            );
          } else resolve({ status, body: body as T, headers: res.headers });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer from ${url.host} within ${opts.timeoutMs ?? 15_000} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
