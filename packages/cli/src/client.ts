import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { requestJson, ServerError, type SettingSpec, UsageError } from '@muster/host';
import { type HeldLogin, heldLogin } from './logins.js';
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
    flag: 'ca',
    env: 'MUSTER_CA_FILE',
    kind: 'string',
    value: 'FILE',
    help: 'CA certificate to verify an https:// admin plane with (default: the one muster login kept, or <data-dir>/ca.pem)',
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

/** How a request proves who sends it: a bearer token, or the certificate of `muster login`. */
type Credential =
  | { token: string; source: string; login?: undefined }
  | { token?: undefined; source: string; login: HeldLogin };

/**
 * The admin credential and where it came from, in this order: `--token` (the less safe way),
 * `--token-file`/`MUSTER_TOKEN_FILE`, the literal `MUSTER_TOKEN`, the certificate `muster login`
 * got for this URL (while it is valid), then `<data-dir>/admin.token`.
 */
function adminCredential(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  dataDir: string,
  url: URL,
): Credential {
  if (typeof values.token === 'string') return { token: values.token, source: 'given with --token' };
  const tokenFile = values['token-file'];
  if (typeof tokenFile === 'string') {
    return {
      token: readTokenFile(tokenFile, '--token-file'),
      source: `from ${displayPath(resolve(tokenFile))}`,
    };
  }
  if (env.MUSTER_TOKEN) return { token: env.MUSTER_TOKEN, source: 'in MUSTER_TOKEN' };
  const login = heldLogin(url, env);
  if (login && login.notAfter > Date.now())
    return { login, source: `of ${login.user} from muster login (${displayPath(login.files.cert)})` };
  const file = join(dataDir, 'admin.token');
  try {
    return { token: readFileSync(file, 'utf8').trim(), source: `from ${displayPath(file)}` };
  } catch {
    if (login)
      throw new ConnectionError(
        `the certificate muster login got for ${url.origin} expired at ${new Date(login.notAfter).toISOString()}; run: muster login --url ${url.origin}`,
      );
    throw new ConnectionError(
      `no admin token: pass --token-file (or set MUSTER_TOKEN_FILE), or run where ${displayPath(file)} exists (--data-dir); over HTTPS, muster login --url URL gets you a certificate instead`,
    );
  }
}

/** The TLS material and headers a request carries for a credential. */
function presenting(credential: Credential, ca: string | undefined) {
  const { login, token } = credential;
  return {
    headers: token === undefined ? ({} as Record<string, string>) : { authorization: `Bearer ${token}` },
    tls: {
      ...(ca ? { ca } : {}),
      ...(login ? { key: login.keyPem, cert: login.certPem } : {}),
    },
  };
}

/** Builds a client from flags and environment; the token comes from a file, the data dir or a flag. */
export function adminClient(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): AdminClient {
  const url = adminUrl(values);
  const dataDir = resolve((values['data-dir'] as string | undefined) ?? '.muster');
  const credential = adminCredential(values, env, dataDir, url);
  const ca = url.protocol === 'https:' ? adminCa(values, url, env, dataDir) : undefined;
  const shown = presenting(credential, ca);
  return {
    url,
    call: (method, path, body) => send(url, credential, method, path, body, ca),
    stream: (path, headers, signal) =>
      new Promise((resolve, reject) => {
        const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
        const req = request(new URL(path, url), {
          agent: false,
          signal,
          ...shown.tls,
          headers: { accept: 'text/event-stream', ...headers, ...shown.headers },
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      }),
  };
}

/**
 * The CA the admin plane's certificate is verified with: `--ca`, the one `muster login` kept for
 * this URL, else the data dir's fleet CA; none is needed for a certificate from a public CA.
 */
export function adminCa(
  values: Record<string, unknown>,
  url: URL,
  env: NodeJS.ProcessEnv,
  dataDir: string,
): string | undefined {
  if (typeof values.ca === 'string') {
    try {
      return readFileSync(values.ca, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--ca: cannot read ${values.ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  const stored = heldLogin(url, env)?.caPem;
  if (stored) return stored;
  try {
    return readFileSync(join(dataDir, 'ca.pem'), 'utf8');
  } catch {
    return undefined;
  }
}

async function send<T>(
  base: URL,
  credential: Credential,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  ca?: string,
): Promise<T> {
  const shown = presenting(credential, ca);
  const agent = credential.login ? new HttpsAgent({ keepAlive: false, ...shown.tls }) : undefined;
  try {
    const { body: answer } = await requestJson<T>(new URL(path, base), {
      method,
      body,
      headers: shown.headers,
      timeoutMs: 30_000,
      ...(agent ? { agent } : ca ? { ca } : {}),
    });
    return answer;
  } catch (err) {
    // Say which credential was refused: a stale admin.token in the wrong data dir is the usual cause.
    if (err instanceof ServerError && err.status === 401) {
      const detail = err.problem?.detail ?? 'unauthorized';
      const what = credential.login ? 'certificate' : 'token';
      throw new ServerError(401, {
        ...err.problem,
        detail: `the server refused the ${what} ${credential.source}: ${detail}`,
      });
    }
    // An id prefix several ids start with is the user's to lengthen, as git's ambiguous hashes are.
    if (err instanceof ServerError && err.problem?.code === 'ambiguous_id') throw new UsageError(err.message);
    if (err instanceof ServerError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ECONNREFUSED' ? 'connection refused; is muster server running?' : (err as Error).message;
    throw new ConnectionError(`cannot reach the control plane at ${base.origin}: ${why}`);
  } finally {
    agent?.destroy();
  }
}
