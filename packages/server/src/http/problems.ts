import { STATUS_CODES } from 'node:http';
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

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  const problem: Problem = {
    ...extra,
    type: `urn:muster:problem:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    requestId: String(reply.request.id),
  };
  return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

function validationDetail(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return 'request failed validation';
  const where = err.validationContext ?? 'body';
  const path = first.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
  return `${where}${path ? `.${path}` : ''} ${first.message ?? 'is invalid'}`;
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
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );
}
