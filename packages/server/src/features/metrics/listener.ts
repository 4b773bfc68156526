import { createServer, type Server } from 'node:http';
import type { HostPort } from '../../config.js';
import type { Metrics } from './metrics.js';

/**
 * `--metrics-listen`: `/metrics` alone, over plain HTTP and without a credential, for a
 * Prometheus that reaches the server on a network of its own. Nothing else is served there.
 */
export async function listenForMetrics(
  at: HostPort,
  metrics: Pick<Metrics, 'text'>,
  handshakeTimeoutMs: number,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('only GET /metrics is served here\n');
      return;
    }
    metrics.text().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
      () => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('metrics are unavailable right now\n');
      },
    );
  });
  // A scraper sends its request at once: a client that does not is not one.
  server.headersTimeout = handshakeTimeoutMs;
  server.requestTimeout = 2 * handshakeTimeoutMs;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
