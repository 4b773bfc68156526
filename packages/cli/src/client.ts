import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { requestJson, ServerError, type SettingSpec } from '@muster/host';

/** Flags every admin verb takes to find the control plane and prove who it is. */
export const ADMIN_SETTINGS: readonly SettingSpec[] = [
  {
    flag: 'url',
    env: 'MUSTER_URL',
    kind: 'string',
    value: 'URL',
    help: 'admin API of the control plane (default http://127.0.0.1:8080)',
  },
  {
    flag: 'token',
    env: 'MUSTER_TOKEN',
    kind: 'string',
    value: 'TOKEN',
    help: 'admin API token (default: read <data-dir>/admin.token; or MUSTER_TOKEN_FILE)',
  },
  {
    flag: 'data-dir',
    env: 'MUSTER_DATA_DIR',
    kind: 'string',
    value: 'DIR',
    help: "the server's data dir, for its admin token and CA (default ./.muster)",
  },
  { flag: 'json', kind: 'boolean', help: 'print JSON only' },
];

/** The CLI could not reach or authenticate to the server; says what to do about it. */
export class ConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

export interface AdminClient {
  readonly url: URL;
  call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** Opens a long-lived GET (the event stream) and hands over the response as it arrives. */
  stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage>;
}

/** Builds a client from flags and environment; the token comes from a flag, a file, or the data dir. */
export function adminClient(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): AdminClient {
  const url = new URL((values.url as string | undefined) ?? 'http://127.0.0.1:8080');
  const dataDir = resolve((values['data-dir'] as string | undefined) ?? '.muster');
  let token = values.token as string | undefined;
  if (!token && env.MUSTER_TOKEN_FILE) token = readFileSync(env.MUSTER_TOKEN_FILE, 'utf8').trim();
  if (!token) {
    try {
      token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    } catch {
      throw new ConnectionError(
        `no admin token: pass --token, set MUSTER_TOKEN_FILE, or run where ${join(dataDir, 'admin.token')} exists (--data-dir)`,
      );
    }
  }
  let ca: string | undefined;
  if (url.protocol === 'https:') {
    try {
      ca = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
    } catch {
      ca = undefined; // a certificate from a public CA needs nothing more
    }
  }
  return {
    url,
    call: (method, path, body) => send(url, token!, method, path, body, ca),
    stream: (path, headers, signal) =>
      new Promise((resolve, reject) => {
        const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
        const req = request(new URL(path, url), {
          agent: false,
          signal,
          ...(ca ? { ca } : {}),
          headers: { accept: 'text/event-stream', ...headers, authorization: `Bearer ${token}` },
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      }),
  };
}

async function send<T>(
  base: URL,
  token: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  ca?: string,
): Promise<T> {
  try {
    const { body: answer } = await requestJson<T>(new URL(path, base), {
      method,
      body,
      headers: { authorization: `Bearer ${token}` },
      timeoutMs: 30_000,
      ...(ca ? { ca } : {}),
    });
    return answer;
  } catch (err) {
    if (err instanceof ServerError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ECONNREFUSED' ? 'connection refused; is muster server running?' : (err as Error).message;
    throw new ConnectionError(`cannot reach the control plane at ${base.origin}: ${why}`);
  }
}
