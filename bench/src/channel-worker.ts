import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { heartbeat } from './support.js';

/**
 * One process of the channels load: opens a channel for each identity it is given, then
 * sends each one's heartbeat every interval and counts the answers. Talks to its parent with
 * JSON lines on stdout: {opened}; heartbeats start on SIGUSR1; {acked, failed} on SIGTERM.
 */
const [file, url, ca, intervalText] = process.argv.slice(2) as [string, string, string, string];
const identities = JSON.parse(readFileSync(file, 'utf8')) as Array<{ keyPem: string; certPem: string }>;
const caPem = readFileSync(ca, 'utf8');
const intervalMs = Number(intervalText);
let acked = 0;
let failed = 0;
const sockets: WebSocket[] = [];

async function open(identity: { keyPem: string; certPem: string }): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      key: identity.keyPem,
      cert: identity.certPem,
      ca: caPem,
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string };
      if (m.type === 'ack') acked++;
      else if (m.type === 'error') failed++;
    });
  });
}

let next = 0;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next < identities.length) {
      const identity = identities[next++]!;
      try {
        sockets.push(await open(identity));
      } catch {
        failed++;
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify({ opened: sockets.length })}\n`);

// Heartbeats start on SIGUSR1, once every process holds its channels: the parent measures the
// server's memory for held channels first, without the garbage of heartbeats in it.
await new Promise<void>((resolve) => process.once('SIGUSR1', () => resolve()));

// Each channel reports every interval, spread evenly so the load is steady.
let seq = 0;
const timers = sockets.map((ws, i) =>
  setTimeout(
    () => {
      const beat = () =>
        ws.readyState === ws.OPEN &&
        ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: heartbeat(seq++) }));
      beat();
      timers[i] = setInterval(beat, intervalMs) as unknown as NodeJS.Timeout;
    },
    (i / sockets.length) * intervalMs,
  ),
);
process.on('SIGTERM', () => {
  for (const t of timers) clearInterval(t);
  process.stdout.write(`${JSON.stringify({ acked, failed })}\n`, () => process.exit(0));
});
