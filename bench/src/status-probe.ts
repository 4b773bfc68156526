import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import WebSocket from 'ws';
import { type BenchServer, enroll, heartbeat, makeApplicants } from './support.js';

/**
 * Event stream latency from heartbeat to SSE client: one probe agent, holding a channel like
 * the rest of the fleet, reports a full disk and then a healthy one, `samples` times; each
 * latency runs from sending the heartbeat to its `node.status_changed` event arriving at an
 * SSE client. It includes the server's status debounce, which the caller sets (and reports).
 */
export async function heartbeatToStreamLatency(server: BenchServer, samples: number): Promise<number[]> {
  const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
  const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', { uses: 1 });
  const [probe] = await makeApplicants(1, 'probe');
  const enrolled = await enroll(server, secret, probe!);
  const arrivals: Array<(to: string) => void> = [];
  const sse = await openStatusStream(server.adminUrl, token, enrolled.nodeId, (to) => arrivals.shift()?.(to));
  const ws = new WebSocket(`${server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`, {
    key: probe!.keyPem,
    cert: enrolled.certificate,
    ca: server.caPem,
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let seq = 0;
  const send = (fullDisk: boolean) => {
    const beat = heartbeat(seq++);
    if (fullDisk) beat.disks = [{ mount: '/', totalBytes: 100 * 2 ** 30, freeBytes: 2 ** 30 }];
    ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: beat }));
  };
  try {
    send(false);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // its first status is recorded quietly
    const latencies: number[] = [];
    for (let i = 0; i < samples * 2; i++) {
      const next = new Promise<string>((resolve, reject) => {
        arrivals.push(resolve);
        setTimeout(() => reject(new Error('no status event within 30 s')), 30_000).unref();
      });
      const sentAt = performance.now();
      send(i % 2 === 0);
      await next;
      latencies.push(performance.now() - sentAt);
    }
    return latencies;
  } finally {
    ws.close();
    sse.destroy();
  }
}

function openStatusStream(
  adminUrl: string,
  token: string,
  nodeId: string,
  onChange: (to: string) => void,
): Promise<import('node:http').ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = request(`${adminUrl}/v1/events/stream?kind=node.status_changed&node=${nodeId}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`the stream answered ${res.statusCode}`));
      const parser = createParser({
        onEvent: ({ data }) => onChange((JSON.parse(data) as { data: { to: string } }).data.to),
      });
      res.setEncoding('utf8').on('data', (chunk: string) => parser.feed(chunk));
      resolve(req);
    });
    req.on('error', reject);
    req.end();
  });
}
