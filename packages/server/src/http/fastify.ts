import { randomBytes } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { type AdminHosts, hostCheck } from './host-check.js';
import { MAX_BODY_BYTES, parseJsonBody } from './json.js';
import {
  clientErrorProblem,
  frameworkErrorProblem,
  installProblemHandlers,
  MAX_PARAM_LENGTH,
} from './problems.js';

// ajv-formats is CommonJS with a default export; under NodeNext its default import is the module.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Log this route's successful requests at debug: it is the bulk of the traffic. */
    quiet?: boolean;
    /** A console page or file, not part of the API: left out of the OpenAPI description. */
    notApi?: boolean;
  }
}

// Bodies are JSON and must carry the types they claim: "7" is not a number. Query strings and
// path parameters are text by nature, so there numbers are read from their digits.
const ajvOptions = { strict: false, useDefaults: true, removeAdditional: false, allErrors: false } as const;
const bodies = addFormats(new Ajv({ ...ajvOptions, coerceTypes: false }));
const strings = addFormats(new Ajv({ ...ajvOptions, coerceTypes: 'array' }));

export interface PlaneOptions {
  logger: Logger;
  plane: 'agent' | 'admin';
  /** Errors that mean the store is away: answered 503, not 500. */
  storeUnavailable?: (err: unknown) => boolean;
  /** The names this plane answers to; any other `Host` is refused before anything else runs. */
  hosts?: AdminHosts;
  /** TLS settings; plain HTTP when absent. */
  https?: SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean };
}

/**
 * A Fastify instance with what both planes share: bounded JSON bodies, problem documents for
 * every error, request ids, and one redacted log line per request.
 */
export function createPlane(opts: PlaneOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger.child({ plane: opts.plane }),
    // One line per request, written by the onResponse hook below, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomBytes(8).toString('hex'),
    requestIdHeader: false,
    bodyLimit: MAX_BODY_BYTES,
    // Slow or idle clients must not hold sockets forever; agents reconnect on their own.
    keepAliveTimeout: 75_000,
    requestTimeout: 30_000,
    return503OnClosing: true,
    // Errors raised before any route runs are problem documents too (problems.ts).
    maxParamLength: MAX_PARAM_LENGTH,
    frameworkErrors: frameworkErrorProblem,
    clientErrorHandler: clientErrorProblem,
    ...(opts.https ? { https: opts.https } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodies : strings).compile(schema),
  );
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: MAX_BODY_BYTES },
    (_req, body, done) => {
      try {
        done(null, parseJsonBody(body as string));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );
  installProblemHandlers(app, opts.storeUnavailable);
  // First of all hooks, so a misdirected request learns nothing, not even whether it needs a credential.
  if (opts.hosts) app.addHook('onRequest', hostCheck(opts.hosts));
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // The console's hashed files say how long they keep; everything else is never cached.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
  app.addHook('onResponse', async (request, reply) => {
    const line = {
      method: request.method,
      path: request.url.split('?')[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ...(request.node ? { node: request.node.id } : {}),
    };
    // Heartbeats are the bulk of agent-plane traffic: logged at debug unless they fail.
    if (reply.statusCode >= 500) request.log.error(line, 'request');
    else if (request.routeOptions.config?.quiet && reply.statusCode < 400) request.log.debug(line, 'request');
    else request.log.info(line, 'request');
  });
  return app;
}
