import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { loadIdentity } from '@muster/agent';
import type { CaStatus, NodeView, TokenCreated, TokenView } from '@muster/proto';
import {
  type AgentRun,
  type InProcessServer,
  startAgent,
  startInProcessServer,
} from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { dialects, Sandbox } from '../support/sandbox.js';

const issuedBy = (pem: string, caPem: string) => {
  const ca = new X509Certificate(caPem);
  const cert = new X509Certificate(pem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
};

async function tokenFor(t: InProcessServer, name: string): Promise<TokenCreated> {
  const res = await t.admin('POST', '/v1/tokens', { name });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return res.json as TokenCreated;
}

async function node(t: InProcessServer, name: string): Promise<NodeView> {
  return (await t.admin('GET', `/v1/nodes/${name}`)).json as NodeView;
}

/** `muster ca rotate`, then `muster ca finish --force`: nodes still on the old root are cut off. */
async function rotateAndForceFinish(t: InProcessServer): Promise<{ oldPin: string; newPem: string }> {
  const oldPin = t.server.identity.ca.pin;
  assert.equal((await t.admin('POST', '/v1/ca/rotate')).status, 201);
  const newPem = t.server.identity.nextCa!.pem;
  const finished = await t.admin('POST', '/v1/ca/finish', { force: true });
  assert.equal(finished.status, 200, JSON.stringify(finished.json));
  return { oldPin, newPem };
}

async function enrolledAndStopped(t: InProcessServer, sandbox: Sandbox, name: string): Promise<AgentRun> {
  const first = startAgent(sandbox, {
    server: new URL(t.server.agentUrl),
    caPin: t.server.identity.ca.pin,
    rootPin: t.server.rootPin,
    token: (await tokenFor(t, name)).secret,
    name,
  });
  await waitFor('the agent to report', async () => (first.acks.length > 0 ? true : undefined));
  return first;
}

const reportsAgain = (run: AgentRun) =>
  waitFor('the agent to enroll again and report', async () => {
    if (run.logs.some((l) => l.msg === 'enrolling again failed; carrying on with the identity held'))
      throw new Error(
        `enrolling again failed: ${JSON.stringify(run.logs.filter((l) => l.level === 'error'))}`,
      );
    return run.acks.length > 0 ? true : undefined;
  });

// An agent re-enrolling from an old data dir after a CA rotation trusts the roots it already
// holds (ca.pem) or the pin its new join line gives, not only the pin of its first enrollment.
for (const dialect of dialects()) {
  describe(`enrolling again after a CA rotation (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('away through ca rotate and ca finish --force: the new join line (new pin, new token) on the old data dir brings it back', async () => {
      const t = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      try {
        const first = await enrolledAndStopped(t, sandbox, 'rr-away');
        await first.stop();
        const { oldPin, newPem } = await rotateAndForceFinish(t);
        // The operator retires the node the forced finish left on the old root, and makes a new join line.
        assert.equal((await t.admin('DELETE', `/v1/nodes/rr-away`)).status, 204);
        const token = await tokenFor(t, 'rr-away');
        assert.notEqual(token.caPin, oldPin, 'the join line pins the new root');

        const again = startAgent(
          sandbox,
          {
            server: new URL(t.server.agentUrl),
            caPin: token.caPin,
            rootPin: t.server.rootPin,
            token: token.secret,
            name: 'rr-away',
          },
          {},
          first.dataDir,
        );
        await reportsAgain(again);
        assert.ok(
          again.logs.some(
            (l) => l.level === 'error' && /does not lead to a fleet CA this node holds/.test(l.msg),
          ),
          'it says why its identity no longer works',
        );
        assert.ok(again.logs.some((l) => l.msg === 'enrolled again'));
        const stored = await loadIdentity(first.dataDir);
        assert.ok(stored);
        assert.equal(stored.caPin, token.caPin);
        assert.ok(issuedBy(stored.certPem, newPem), 'its certificate comes from the new root');
        const current = await node(t, 'rr-away');
        assert.equal(current.id, stored.nodeId);
        assert.notEqual(current.status, 'offline');
        await again.stop();
      } finally {
        await t.close();
      }
    });

    test('renewed onto the new root during the overlap, later refused: with only its first pin it trusts the new root it holds', async () => {
      const t = await startInProcessServer(sandbox, dialect, {
        'heartbeat-interval': '1s',
        'cert-lifetime': '1h',
      });
      try {
        const first = await enrolledAndStopped(t, sandbox, 'rr-held');
        const oldPin = t.server.identity.ca.pin;
        assert.equal((await t.admin('POST', '/v1/ca/rotate')).status, 201);
        // Renewed, and used: the server counts a node on the new root once it presents the new certificate.
        await waitFor(
          'the node to be on the new root',
          async () => {
            const status = (await t.admin('GET', '/v1/ca')).json as CaStatus;
            return first.renewed.length > 0 && status.rotation?.nodesOnRetiring === 0 ? true : undefined;
          },
          { timeoutMs: 30_000 },
        );
        await first.stop();
        assert.equal((await t.admin('POST', '/v1/ca/finish', {})).status, 200);
        assert.equal((await t.admin('DELETE', `/v1/nodes/rr-held`)).status, 204);

        // The host's unit still names the pin of its first enrollment; only the token is new.
        const token = await tokenFor(t, 'rr-held');
        const again = startAgent(
          sandbox,
          {
            server: new URL(t.server.agentUrl),
            caPin: oldPin,
            rootPin: t.server.rootPin,
            token: token.secret,
            name: 'rr-held',
          },
          {},
          first.dataDir,
        );
        await reportsAgain(again);
        const stored = await loadIdentity(first.dataDir);
        assert.ok(stored);
        assert.equal(stored.caPin, token.caPin, 'it now pins the root that enrolled it');
        assert.notEqual(stored.caPin, oldPin);
        assert.equal((await node(t, 'rr-held')).id, stored.nodeId);
        await again.stop();
      } finally {
        await t.close();
      }
    });

    test('away through the rotation and given only its old pin: the token is never sent, and the log says what to do', async () => {
      const t = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      try {
        const first = await enrolledAndStopped(t, sandbox, 'rr-stale');
        await first.stop();
        const { oldPin } = await rotateAndForceFinish(t);
        const token = await tokenFor(t, 'rr-stale');
        const again = startAgent(
          sandbox,
          {
            server: new URL(t.server.agentUrl),
            caPin: oldPin,
            rootPin: t.server.rootPin,
            token: token.secret,
            name: 'rr-stale',
          },
          {},
          first.dataDir,
        );
        const failed = await waitFor('the agent to refuse the server', async () =>
          again.logs.find((l) => l.msg === 'enrolling again failed; carrying on with the identity held'),
        );
        assert.match(
          String(failed.fields?.error),
          /not the one the join line names.*start the agent with the --ca-pin of a new join line/,
        );
        await again.stop();
        assert.equal(again.enrolled.length, 1, 'only the identity it started with');
        const tokens = (await t.admin('GET', '/v1/tokens')).json.items as TokenView[];
        assert.equal(tokens.find((x) => x.id === token.id)?.usesLeft, 1, 'the token was never spent');
      } finally {
        await t.close();
      }
    });
  });
}
