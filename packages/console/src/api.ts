/** The admin API as the console calls it: same origin, the session cookie, the CSRF header. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | undefined;
let onSignedOut: () => void = () => {};

/** The session's CSRF token, echoed on every call that changes state. */
export function setSessionToken(token: string | undefined, signedOut: () => void): void {
  csrf = token;
  onSignedOut = signedOut;
}

/** Calls the API; a 401 means the session is over, and the console goes back to sign-in. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-muster-csrf'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  // Signing in answers 401 for a refused credential: that is the sign-in page's to show.
  if (res.status === 401 && !path.startsWith('/v1/session')) {
    onSignedOut();
    throw new ApiError(401, 'your session has ended; sign in again');
  }
  if (!res.ok) {
    const problem = (await res.json().catch(() => ({}))) as { detail?: string; title?: string };
    throw new ApiError(res.status, problem.detail ?? problem.title ?? `the server answered ${res.status}`);
  }
  if (res.status === 204) return undefined as T;
  return ((res.headers.get('content-type') ?? '').includes('json') ? res.json() : res.text()) as Promise<T>;
}

/** An error as one sentence for the page. */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
