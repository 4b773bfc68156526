import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

/**
 * The limit the heartbeat figure is measured against: a bare Node HTTPS server with the same
 * TLS settings as the agent plane (client certificates requested, fleet CA trusted) that reads
 * the body and answers 204. Started as its own process by the heartbeat scenario.
 */
const [keyPath, certPath, caPath] = process.argv.slice(2);
if (!keyPath || !certPath || !caPath) {
  console.error('usage: bare-server KEY CERT CA');
  process.exit(2);
}
const ca = readFileSync(caPath, 'utf8');
const server = createServer(
  {
    key: readFileSync(keyPath),
    cert: `${readFileSync(certPath, 'utf8').trim()}\n${ca.trim()}\n`,
    ca: [ca],
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    keepAliveTimeout: 75_000,
  },
  (req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 204;
      res.end();
    });
  },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening https://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
