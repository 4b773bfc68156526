import { MUSTER_VERSION } from '@muster/proto';
import type { FastifyInstance, RouteOptions } from 'fastify';

type Schema = Record<string, unknown>;

interface RecordedRoute {
  plane: 'agent' | 'admin';
  method: string;
  url: string;
  schema: { body?: Schema; querystring?: Schema; params?: Schema; response?: Record<string, Schema> };
}

/**
 * Collects every route's schemas as the planes register them, and renders them as OpenAPI
 * 3.1: the description is made from the same schemas that validate requests, so it cannot drift.
 */
export class OpenApiRecorder {
  private readonly routes: RecordedRoute[] = [];

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

  document(): Schema {
    const paths: Record<string, Record<string, Schema>> = {};
    const sorted = [...this.routes].sort(
      (a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method),
    );
    for (const route of sorted) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      const operation: Schema = {
        tags: [route.plane],
        ...(route.plane === 'agent' && route.url !== '/v1/enroll'
          ? { security: [{ nodeCertificate: [] }] }
          : route.plane === 'admin' && (route.url.startsWith('/v1/') || route.url === '/metrics')
            ? { security: [{ adminToken: [] }] }
            : { security: [] }),
        parameters: [
          ...parameters(route.schema.params, 'path'),
          ...parameters(route.schema.querystring, 'query'),
        ],
        ...(route.schema.body
          ? {
              requestBody: {
                required: true,
                content: { 'application/json': { schema: plain(route.schema.body) } },
              },
            }
          : {}),
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
          nodeCertificate: { type: 'mutualTLS' },
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
