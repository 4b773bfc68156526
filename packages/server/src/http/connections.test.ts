import assert from 'node:assert/strict';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../testing/harness.js';
import { ConnectionGuard, defaultAgentConnections } from './connections.js';

/** A raw TCP socket from `from` (any 127/8 address is this host) that never sends a byte. */
function silentSocket(url: string, from: string): Promise<Socket & { gone: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const socket = tcpConnect({ host: hostname, port: Number(port), localAddress: from });
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(Object.assign(socket, { gone })));
    socket.once('error', reject);
  });
}

/** Waits for a condition with a bounded deadline, polling; the deadline is not the assertion. */
async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Fails if `promise` has not settled in `ms`: a socket Node kept for its 120 s default fails here. */
function within<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms);
    }),
  ]);
}

const metric = async (t: TestServer, line: RegExp) => {
  const match = line.exec((await t.admin('GET', '/metrics')).body);
  return match ? Number(match[1]) : 0;
};
const openOn = (t: TestServer, plane: string) =>
  metric(t, new RegExp(`^muster_connections_open\\{plane="${plane}"\\} (\\d+)$`, 'm'));
const refused = (t: TestServer, plane: string, reason: string) =>
  metric(
    t,
    new RegExp(`^muster_connections_refused_total\\{plane="${plane}",reason="${reason}"\\} (\\d+)$`, 'm'),
  );
const healthz = async (t: TestServer) => (await fetch(`${t.server.adminUrl}/healthz`)).status;

describe('connections that never start TLS are closed after the handshake timeout', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite', { settings: { 'tls-handshake-timeout': '300ms' } });
  });
  after(async () => {
    await t.close();
  });

  test('raw sockets on the agent plane and the admin plane are closed, and counted', async () => {
    const agentPlane = await Promise.all(
      Array.from({ length: 10 }, () => silentSocket(t.server.agentUrl, '127.0.0.5')),
    );
    const adminPlane = await Promise.all(
      Array.from({ length: 5 }, () => silentSocket(t.server.adminUrl, '127.0.0.5')),
    );
    // Before, Node held such a socket for 120 s; the deadline here is far shorter than that.
    await within(Promise.all([...agentPlane, ...adminPlane].map((s) => s.gone)), 'silent sockets');
    assert.equal(await refused(t, 'agent', 'handshake_timeout'), 10);
    assert.equal(await refused(t, 'admin', 'handshake_timeout'), 5);
    assert.equal(await healthz(t), 200);
  });
});

describe('connection budgets: per source address and in all, the admin plane on its own', () => {
  let t: TestServer;
  let agent: TestAgent;
  before(async () => {
    t = await startTestServer('sqlite', {
      settings: {
        // Long enough that any socket closed in this test was closed by a budget.
        'tls-handshake-timeout': '10m',
        'max-connections-per-source': '20',
        'max-connections': '40',
      },
    });
    agent = await enrollAgent(t, { name: 'budget-1' });
    assert.equal((await agent.heartbeat(sampleHeartbeat(1))).status, 202);
  });
  after(async () => {
    agent.agent.destroy();
    await t.close();
  });

  test('a source over its share is refused; the admin plane answers and an agent still reports', async () => {
    const before = await openOn(t, 'agent');
    const held = await Promise.all(
      Array.from({ length: 20 }, () => silentSocket(t.server.agentUrl, '127.0.0.2')),
    );
    await until('the server to hold the 20 sockets', async () => (await openOn(t, 'agent')) === before + 20);
    const over = await silentSocket(t.server.agentUrl, '127.0.0.2');
    await within(over.gone, 'the socket over the budget');
    assert.ok(
      held.every((s) => !s.destroyed),
      'the sockets within the share stay open',
    );
    assert.equal(await refused(t, 'agent', 'per_source'), 1);
    assert.equal(await healthz(t), 200);
    // A new connection from another address is let in: a fresh agent enrolls and reports.
    const other = await enrollAgent(t, { name: 'budget-2' });
    assert.equal((await other.heartbeat(sampleHeartbeat(1))).status, 202);
    other.agent.destroy();
    for (const s of held) s.destroy();
    await until('the sockets to be let go', async () => (await openOn(t, 'agent')) <= before);
  });

  test('a full agent plane refuses new connections; the admin plane has its own budget, held connections keep working', async () => {
    const before = await openOn(t, 'agent');
    const room = 40 - before;
    const sources = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    const held = await Promise.all(
      Array.from({ length: room }, (_, i) => silentSocket(t.server.agentUrl, sources[i % 3]!)),
    );
    await until('the agent plane to be full', async () => (await openOn(t, 'agent')) === 40);
    const over = await silentSocket(t.server.agentUrl, '127.0.0.6');
    await within(over.gone, 'the socket over the budget');
    assert.equal(await refused(t, 'agent', 'total'), 1);
    assert.equal(await healthz(t), 200, 'the admin plane stays reachable');
    // The agent's kept-alive connection was in before the flood: its heartbeats still work.
    assert.equal((await agent.heartbeat(sampleHeartbeat(2))).status, 202);
    for (const s of held) s.destroy();
  });
});

test('a budget being hit is said in the log once a minute, with how many were refused', async () => {
  const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  let now = 0;
  const server = createServer((socket) => socket.on('error', () => {}));
  const guard = new ConnectionGuard({
    plane: 'agent',
    budget: { total: 100, perSource: 2 },
    handshakeTimeoutMs: 60_000,
    plainHttp: false,
    onRefused: () => {},
    logger: {
      warn: ((fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg })) as never,
    },
    now: () => now,
  }).attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `tcp://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const kept = [await silentSocket(url, '127.0.0.7'), await silentSocket(url, '127.0.0.7')];
    await until('both to be held', () => guard.size === 2);
    for (let i = 0; i < 5; i++) await within((await silentSocket(url, '127.0.0.7')).gone, 'refused');
    assert.equal(lines.length, 1);
    // What was refused and for whom, as fields a log search finds, not the sentence's wording.
    assert.deepEqual(lines[0]!.fields, {
      plane: 'agent',
      reason: 'per_source',
      source: '127.0.0.7',
      refusedSinceLastLine: 1,
    });
    now += 61_000;
    await within((await silentSocket(url, '127.0.0.7')).gone, 'refused');
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.fields.refusedSinceLastLine, 5, 'the four untold, and this one');
    for (const s of kept) s.destroy();
  } finally {
    server.close();
  }
});

test("the agent plane's default total stays under the open-file limit, with the admin budget set apart", () => {
  assert.equal(defaultAgentConnections(256, 1024), 512);
  assert.equal(defaultAgentConnections(256, 20_000), 19_488);
  assert.equal(
    defaultAgentConnections(100_000, 20_000),
    14_744,
    'a huge admin budget takes a quarter at most',
  );
  assert.equal(defaultAgentConnections(256, 1_048_576), 50_000);
  assert.equal(defaultAgentConnections(256, Number.POSITIVE_INFINITY), 50_000);
});
