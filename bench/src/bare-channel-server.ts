import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { WebSocketServer } from 'ws';

/**
 * The limit `bench channels` measures memory against: a bare Node HTTPS server asking for client
 * certificates of the same fleet CA, upgrading every request to a WebSocket that does nothing.
 * What a held mTLS WebSocket costs in Node itself, before Muster adds anything. Prints {port}.
 */
const [keyFile, certFile, caFile] = process.argv.slice(2) as [string, string, string];
const server = createServer({
  key: readFileSync(keyFile),
  cert: readFileSync(certFile),
  ca: readFileSync(caFile),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
});
const wss = new WebSocketServer({ server, maxPayload: 1024 * 1024 });
wss.on('connection', (ws) => ws.on('error', () => ws.terminate()));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
