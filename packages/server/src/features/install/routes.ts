import { createReadStream } from 'node:fs';
import { InstallInfo, InstallManifest } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RateLimitedError } from '../../errors.js';
import { type Limiter, sourceOf } from '../../http/rate-limit.js';
import type { InstallService } from './service.js';

/**
 * The packaged agent on the agent plane, for hosts that have nothing yet: no client
 * certificate is asked for (a new host has none), and every request counts against its source
 * address's allowance, as enrollments do. Nothing here is secret; what makes it safe to run is
 * the installer line's CA hash and the manifest's SHA-256 sums, checked on the host.
 */
export function installAgentRoutes(
  app: FastifyInstance,
  install: Pick<InstallService, 'manifest' | 'caPem' | 'script' | 'file'>,
  limiter: Limiter,
): void {
  const onRequest = async (request: FastifyRequest) => {
    const wait = await limiter.take(sourceOf(request.ip));
    if (wait > 0) throw new RateLimitedError('too many downloads from this address; retry later', wait);
  };
  app.get('/v1/install/manifest', { onRequest, schema: { response: { 200: InstallManifest } } }, async () =>
    install.manifest(),
  );
  app.get('/v1/install/ca.pem', { onRequest }, async (_request, reply) =>
    reply.type('application/x-pem-file').send(install.caPem()),
  );
  app.get('/v1/install/install.sh', { onRequest }, async (_request, reply) =>
    reply.type('text/plain; charset=utf-8').send(install.script()),
  );
  app.get(
    '/v1/install/files/:name',
    { onRequest, schema: { params: Type.Object({ name: Type.String({ maxLength: 128 }) }) } },
    async (request, reply) => {
      const file = await install.file((request.params as { name: string }).name);
      return reply
        .type('application/octet-stream')
        .header('content-length', file.size)
        .header('x-content-sha256', file.sha256)
        .send(createReadStream(file.path));
    },
  );
}

/** What `muster token create --install` builds its line from. */
export function installAdminRoutes(app: FastifyInstance, install: Pick<InstallService, 'info'>): void {
  app.get(
    '/v1/install',
    { config: { access: { verb: 'read', resource: 'tokens' } }, schema: { response: { 200: InstallInfo } } },
    async () => install.info(),
  );
}
