import type { FastifyInstance } from 'fastify';
import { sendProblem } from '../../http/problems.js';
import type { Metrics } from './metrics.js';

/** Request timing on both planes, and /healthz and /readyz on the admin plane. */
export function observabilityRoutes(
  planes: { agent: FastifyInstance; admin: FastifyInstance },
  metrics: Metrics,
  ping: () => Promise<unknown>,
): void {
  for (const [plane, app] of Object.entries(planes))
    app.addHook('onResponse', async (request, reply) => {
      metrics.requestSeconds.observe(
        { plane, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
  const { admin } = planes;
  admin.get('/healthz', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_request, reply) => {
    try {
      await ping();
      return { status: 'ready' };
    } catch {
      return sendProblem(reply, 503, 'store_unreachable', 'the store does not answer');
    }
  });
}

/**
 * `GET /metrics`, registered in a scope that authenticates: any valid admin-plane credential
 * may scrape it (CONTRACT section 8); `--metrics-listen` serves it without one.
 */
export function metricsRoute(scope: FastifyInstance, metrics: Metrics): void {
  const access = { verb: 'read', resource: 'nodes', anyPrincipal: true } as const;
  scope.get('/metrics', { config: { access } }, async (_request, reply) => {
    const { contentType, body } = await metrics.text();
    return reply.type(contentType).send(body);
  });
}
