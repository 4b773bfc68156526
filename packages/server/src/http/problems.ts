import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { PROBLEM_CONTENT_TYPE, type Problem } from '@muster/proto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, RateLimitedError } from '../errors.js';

/** What a framework error may say to a client; anything not listed here is a 500. */
const FRAMEWORK_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: 'body_too_large',
    detail: 'request body is larger than 1 MiB',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    detail: 'request body must be application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'bad_request',
    detail: 'content-length does not match the body',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: 'malformed_json',
    detail: 'request body is empty; expected JSON',
  },
  FST_ERR_BAD_URL: { status: 400, code: 'bad_request', detail: 'malformed URL' },
};

function problemOf(status: number, code: string, detail: string, requestId: string): Problem {
  return {
    type: `urn:muster:problem:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    requestId,
  };
}

/** The one way an error is answered: a problem document, never cached; `extra` adds fields (a 403's `eventId`). */
export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  return (
    reply
      .code(status)
      .type(PROBLEM_CONTENT_TYPE)
      .header('cache-control', 'no-store')
      // Set here too: an error raised before any hook runs (the router's) still names its request.
      .header('x-request-id', String(reply.request.id))
      .send({ ...extra, ...problemOf(status, code, detail, String(reply.request.id)) })
  );
}

function validationDetail(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return 'request failed validation';
  const where = err.validationContext ?? 'body';
  const path = first.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
  const at = `${where}${path ? `.${path}` : ''}`;
  if (first.keyword === 'maxProperties' && first.params.limit === 0)
    return `${at} must be empty: this route takes no body (send none, or {})`;
  if (first.keyword === 'additionalProperties') {
    // The client's own key, quoted as JSON and cut short: the answer never grows with the input.
    const key = JSON.stringify(String(first.params.additionalProperty).slice(0, 64));
    return `${at} has a property it does not take: ${key}`;
  }
  return `${at} ${first.message ?? 'is invalid'}`;
}

/**
 * Errors the router raises before any route or hook runs (Fastify's `frameworkErrors`): without
 * this they are answered with Fastify's own JSON, which echoes the path.
 */
export function frameworkErrorProblem(
  err: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    void sendProblem(
      reply,
      414,
      'uri_too_long',
      `a path segment is longer than ${MAX_PARAM_LENGTH} characters`,
    );
  else void sendProblem(reply, 400, 'bad_request', 'malformed URL');
}

/** How long a path parameter may be; node ids are 36, token and command ids shorter. */
export const MAX_PARAM_LENGTH = 128;

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers too large, a malformed
 * request line, a request that took too long): answered as a problem document too.
 */
export function clientErrorProblem(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, detail] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'request headers are too large']
        : [400, 'bad_request', 'malformed HTTP request'];
  const requestId = randomBytes(8).toString('hex');
  const body = JSON.stringify(problemOf(status, code, detail, requestId));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `cache-control: no-store\r\nx-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Maps every error to an RFC 9457 problem document that carries nothing internal. */
export function installProblemHandlers(
  app: FastifyInstance,
  storeUnavailable: (err: unknown) => boolean = () => false,
): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSec));
    if (err instanceof AppError)
      return sendProblem(reply, err.status, err.code, err.message, err.problemFields());
    if (err.validation) return sendProblem(reply, 400, 'invalid_request', validationDetail(err));
    const known = err.code ? FRAMEWORK_ERRORS[err.code] : undefined;
    if (known) return sendProblem(reply, known.status, known.code, known.detail);
    if (err instanceof SyntaxError)
      return sendProblem(reply, 400, 'malformed_json', 'request body is not valid JSON');
    if (storeUnavailable(err)) {
      request.log.warn({ err }, 'store unavailable');
      return sendProblem(
        reply,
        503,
        'store_unavailable',
        'the store is unavailable right now; retry shortly',
      );
    }
    request.log.error({ err }, 'request failed');
    return sendProblem(
      reply,
      500,
      'internal',
      'internal error; the request id identifies it in the server log',
    );
  });
  // Which methods each route pattern takes, so a known path asked with another method is a 405.
  const routes = new RouteMethods();
  app.addHook('onRoute', (route) => routes.add(route.method, route.url));
  // The path is not echoed: it is the client's own text, and may be anything.
  app.setNotFoundHandler((request, reply) => {
    const allowed = routes.allowed(request.url.split('?')[0] ?? '/');
    if (allowed.length === 0)
      return sendProblem(reply, 404, 'not_found', 'no such route; GET /openapi.json lists them');
    reply.header('allow', allowed.join(', '));
    return sendProblem(
      reply,
      405,
      'method_not_allowed',
      `this route takes ${allowed.join(', ')}, not ${request.method.slice(0, 16)}`,
    );
  });
}

/** Route patterns (`/v1/nodes/:id`, `/assets/*`) and the methods registered for each. */
class RouteMethods {
  private readonly patterns = new Map<string, { match: RegExp; methods: Set<string> }>();

  add(method: string | string[], url: string): void {
    let entry = this.patterns.get(url);
    if (!entry) {
      const source = url
        .split('/')
        .map((part) =>
          part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/');
      entry = { match: new RegExp(`^${source}/?$`), methods: new Set() };
      this.patterns.set(url, entry);
    }
    for (const m of Array.isArray(method) ? method : [method]) entry.methods.add(m);
  }

  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const { match, methods: these } of this.patterns.values())
      if (match.test(path)) for (const m of these) methods.add(m);
    return [...methods].sort();
  }
}
