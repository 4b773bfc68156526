import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { requestJson, ServerError, type SettingSpec, UsageError } from '@muster/host';
import { displayPath } from './output.js';

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
    flag: 'token-file',
    env: 'MUSTER_TOKEN_FILE',
    kind: 'string',
    value: 'FILE',
    help: 'file holding the admin API token (default: <data-dir>/admin.token)',
  },
  {
    // No env here: readSettings would read MUSTER_TOKEN_FILE as this flag's file. The literal
    // MUSTER_TOKEN is still honoured below, as the contract's less safe way.
    flag: 'token',
    kind: 'string',
    value: 'TOKEN',
    help: 'the admin API token itself; less safe (visible in ps and shell history), as is MUSTER_TOKEN',
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

/** The admin API URL from `--url`/`MUSTER_URL`; a bad one is a usage error that names the flag. */
export function adminUrl(values: Record<string, unknown>): URL {
  const text = (values.url as string | undefined) ?? 'http://127.0.0.1:8080';
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new UsageError(`--url: not a URL: "${text}" (expected http://HOST:PORT or https://HOST:PORT)`);
  return url;
}

function readTokenFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * The admin token and where it came from, in this order: `--token` (the less safe way),
 * `--token-file`/`MUSTER_TOKEN_FILE`, the literal `MUSTER_TOKEN`, then `<data-dir>/admin.token`.
 */
function adminToken(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  dataDir: string,
): { token: string; source: string } {
  if (typeof values.token === 'string') return { token: values.token, source: 'given with --token' };
  const tokenFile = values['token-file'];
  if (typeof tokenFile === 'string') {
    return {
      token: readTokenFile(tokenFile, '--token-file'),
      source: `from ${displayPath(resolve(tokenFile))}`,
    };
  }
  if (env.MUSTER_TOKEN) return { token: env.MUSTER_TOKEN, source: 'in MUSTER_TOKEN' };
  const file = join(dataDir, 'admin.token');
  try {
    return { token: readFileSync(file, 'utf8').trim(), source: `from ${displayPath(file)}` };
  } catch {
    throw new ConnectionError(
      `no admin token: pass --token-file (or set MUSTER_TOKEN_FILE), or run where ${displayPath(file)} exists (--data-dir)`,
    );
  }
}

/** Builds a client from flags and environment; the token comes from a file, the data dir or a flag. */
export function adminClient(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): AdminClient {
  const url = adminUrl(values);
  const dataDir = resolve((values['data-dir'] as string | undefined) ?? '.muster');
  const { token, source } = adminToken(values, env, dataDir);
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
    call: (method, path, body) => send(url, { token, source }, method, path, body, ca),
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
  { token, source }: { token: string; source: string },
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
    // Say which token was refused: a stale admin.token in the wrong data dir is the usual cause.
    if (err instanceof ServerError && err.status === 401) {
      const detail = err.problem?.detail ?? 'unauthorized';
      throw new ServerError(401, {
        ...err.problem,
        detail: `the server refused the token ${source}: ${detail}`,
      });
    }
    if (err instanceof ServerError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ECONNREFUSED' ? 'connection refused; is muster server running?' : (err as Error).message;
    throw new ConnectionError(`cannot reach the control plane at ${base.origin}: ${why}`);
  }
}
