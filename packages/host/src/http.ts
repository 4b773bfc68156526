import { request as httpRequest } from 'node:http';
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
 * One JSON request over HTTP or HTTPS, as agents and the CLI make them. TLS settings come from
 * the caller (an https.Agent that holds a node's identity, or a pinned CA); the answer is
 * parsed, and an error status raises a ServerError carrying the problem document.
 */
export function requestJson<T>(
  url: URL,
  opts: {
    method: 'GET' | 'POST' | 'DELETE';
    body?: unknown;
    headers?: Record<string, string>;
    agent?: Agent;
    ca?: string;
    timeoutMs?: number;
    signal?: AbortSignal;
  },
): Promise<JsonResponse<T>> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(
      url,
      {
        method: opts.method,
        ...(opts.agent ? { agent: opts.agent } : { agent: false }),
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: {
          accept: 'application/json',
          ...opts.headers,
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
          const type = String(res.headers['content-type'] ?? '');
          if (!/json/.test(type))
            body = text; // a signed note, say: handed over as text
          else {
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              body = undefined;
            }
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
      req.destroy(
        Object.assign(new Error(`no answer from ${url.host} within ${opts.timeoutMs ?? 15_000} ms`), {
          code: 'ETIMEDOUT',
        }),
      ),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
