import { MUSTER_VERSION } from '@muster/proto';
import type { FastifyInstance, RouteOptions } from 'fastify';

type Schema = Record<string, unknown>;

/** Who may call a route, as OpenAPI says it: each entry one way to sign in; `[]` means anyone. */
export type SecurityRequirement = Array<Record<string, string[]>>;

interface RecordedRoute {
  plane: 'agent' | 'admin';
  method: string;
  url: string;
  schema: {
    body?: Schema;
    querystring?: Schema;
    params?: Schema;
    response?: Record<string, Schema>;
    /** Set by a route whose credential is not its scope's (signing in, the console's cookie). */
    security?: SecurityRequirement;
  };
}

const routeKey = (method: string, url: string) => `${method} ${url}`;

/**
 * Collects every route's schemas as the planes register them, and renders them as OpenAPI
 * 3.1: the description is made from the same schemas that validate requests, so it cannot drift.
 */
export class OpenApiRecorder {
  private readonly routes: RecordedRoute[] = [];
  /** What the scope a route was registered in asks of every request (its onRequest guard). */
  private readonly guarded = new Map<string, SecurityRequirement>();

  watch(app: FastifyInstance, plane: RecordedRoute['plane']): void {
    app.addHook('onRoute', (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (method === 'HEAD' || route.url === '/openapi.json') continue;
        if (route.config?.notApi) continue;
        this.routes.push({
          plane,
          method,
          url: route.url,
          schema: (route.schema ?? {}) as RecordedRoute['schema'],
        });
      }
    });
  }

  /**
   * Says that every route registered in `scope` from now on needs `security`: called beside
   * the hook that enforces it, so the description follows what is checked, not where a route lives.
   */
  secured(scope: FastifyInstance, security: SecurityRequirement): void {
    scope.addHook('onRoute', (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) this.guarded.set(routeKey(method, route.url), security);
    });
  }

  document(): Schema {
    const paths: Record<string, Record<string, Schema>> = {};
    const sorted = [...this.routes].sort(
      (a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method),
    );
    for (const route of sorted) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      const operation: Schema = {
        tags: [route.plane],
        security: route.schema.security ?? this.guarded.get(routeKey(route.method, route.url)) ?? [],
        parameters: [
          ...parameters(route.schema.params, 'path'),
          ...parameters(route.schema.querystring, 'query'),
        ],
        ...(route.schema.body ? { requestBody: requestBody(route.schema.body) } : {}),
        responses: responses(route.schema.response),
      };
      paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'Muster',
        version: MUSTER_VERSION,
        description:
          'Agent plane (TLS, client certificates) and admin plane (bearer token) of the Muster control plane.',
      },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer' },
          consoleSession: {
            type: 'apiKey',
            in: 'cookie',
            name: 'muster_session',
            description:
              'The console session made by POST /v1/session; state-changing calls also send x-muster-csrf.',
          },
          nodeCertificate: { type: 'mutualTLS' },
          userCertificate: {
            type: 'mutualTLS',
            description:
              'a personal client certificate from `muster login` (URI SAN spiffe://<trust-domain>/user/<name>)',
          },
        },
        schemas: {
          Problem: {
            type: 'object',
            required: ['type', 'title', 'status'],
            properties: {
              type: { type: 'string' },
              title: { type: 'string' },
              status: { type: 'integer' },
              detail: { type: 'string' },
              code: { type: 'string' },
              requestId: { type: 'string' },
            },
          },
        },
      },
      paths,
    };
  }
}

/** A route that takes no body says so (NoBody: nothing or `{}`), so every mutating route declares its body. */
function requestBody(schema: Schema): Schema {
  const none = schema.maxProperties === 0;
  return {
    required: !none,
    ...(none ? { description: 'This route takes no body: send none, or {}.' } : {}),
    content: { 'application/json': { schema: plain(schema) } },
  };
}

function plain(schema: unknown): Schema {
  return JSON.parse(JSON.stringify(schema)) as Schema;
}

function parameters(schema: Schema | undefined, where: 'path' | 'query'): Schema[] {
  const properties = (schema?.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema?.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: plain(s),
  }));
}

function responses(response: Record<string, Schema> | undefined): Schema {
  const out: Schema = {};
  for (const [status, schema] of Object.entries(response ?? {})) {
    out[status] = {
      description: `HTTP ${status}`,
      content: { 'application/json': { schema: plain(schema) } },
    };
  }
  if (Object.keys(out).length === 0) out['2XX'] = { description: 'success' };
  out.default = {
    description: 'an RFC 9457 problem document',
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
  return out;
}
