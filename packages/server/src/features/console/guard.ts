import type { FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../../errors.js';
import { type AlternativeCredential, RefusedCredentialError } from '../../http/auth.js';
import type { AdminHosts } from '../../http/host-check.js';
import type { CredentialService } from '../access/credentials.js';
import { type ConsoleSession, CSRF_HEADER, cookieValue, csrfMatches, SESSION_COOKIE } from './sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session that authenticated the request, if one did. */
    consoleSession: ConsoleSession | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True when the browser says the request comes from a page of the console's own origin, or says
 * nothing (non-browser clients). `Sec-Fetch-Site` and `Origin` are set by the browser and cannot
 * be forged by a page, so a cross-site form or script is refused even before the CSRF token.
 * The origin is checked against the admin plane's configured names, never against the request's
 * own `Host`, which a DNS-rebinding page chooses.
 */
export function sameOrigin(request: FastifyRequest, hosts: Pick<AdminHosts, 'originAllowed'>): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  return hosts.originAllowed(origin, request.headers.host);
}

/**
 * The console's session cookie as an admin credential. A request that carries the cookie must
 * carry a live session (else 401, so the console shows its sign-in page); a state-changing one
 * must also come from this origin and echo the session's CSRF token in `x-muster-csrf` (else 403).
 */
export function sessionCredential(
  sessions: { find(secret: string): Promise<ConsoleSession | undefined> },
  hosts: Pick<AdminHosts, 'originAllowed'>,
  principals: Pick<CredentialService, 'bySession'>,
): AlternativeCredential {
  return async (request) => {
    const secret = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (secret === undefined) return false;
    const session = await sessions.find(secret);
    if (!session)
      throw new UnauthorizedError('the console session has ended; sign in again', 'session_ended');
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      if (!sameOrigin(request, hosts) || !csrfMatches(Array.isArray(header) ? header[0] : header, session)) {
        throw new ForbiddenError(
          `a console request that changes state must come from the console itself (${CSRF_HEADER})`,
          'csrf',
        );
      }
    }
    // The user behind the session is checked now: a disabled user's session stops at once.
    const principal = await principals.bySession(session.user, session.credential);
    // Its user is known: the refusal counts against them as well as the source.
    if (!principal)
      throw new RefusedCredentialError(
        'the console session has ended; sign in again',
        'session_ended',
        session.user,
      );
    request.consoleSession = session;
    request.principal = principal;
    request.actor = `user:${principal.user}`;
    return true;
  };
}
