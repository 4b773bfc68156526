import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  dialects,
  httpsJson,
  startReplicas,
  startTestServer,
  type TestServer,
  testFacts,
} from '../../testing/harness.js';
import { testCsr } from '../../testing/pki.js';
import { assertProblem } from '../../testing/problems.js';

const RACERS = 20;

/** Enrollment bodies for `count` different hosts, all carrying the same token. */
async function racers(token: string, count: number, prefix: string) {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const name = `${prefix}-${i}`;
      return { token, name, csr: await testCsr({ name: `CN=${name}` }), facts: testFacts(name) };
    }),
  );
}

/** Sends each enrollment to its replica at once; returns the answers. */
function race(replicas: TestServer[], bodies: object[]) {
  return Promise.all(
    bodies.map((body, i) => {
      const t = replicas[i % replicas.length]!;
      return httpsJson(`${t.server.agentUrl}/v1/enroll`, { body, ca: t.server.identity.ca.pem });
    }),
  );
}

function assertWinners(answers: Awaited<ReturnType<typeof race>>, winners: number): void {
  const created = answers.filter((res) => res.status === 201);
  assert.equal(created.length, winners, answers.map((res) => `${res.status} ${res.body}`).join('\n'));
  for (const res of answers) if (res.status !== 201) assertProblem(res, 401, 'bad_token');
}

for (const dialect of dialects()) {
  describe(`one-use tokens under concurrent enrollment (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test(`${RACERS} concurrent enrollments with a one-use token make exactly one node`, async () => {
      const created = await t.admin('POST', '/v1/tokens', {});
      const answers = await race([t], await racers(created.json.secret, RACERS, 'one'));
      assertWinners(answers, 1);
      const nodes = await t.admin('GET', '/v1/nodes?limit=1000');
      assert.equal(nodes.json.items.length, 1);
      assert.equal(nodes.json.items[0].id, answers.find((res) => res.status === 201)!.json.nodeId);
      const tokens = await t.admin('GET', '/v1/tokens');
      const token = tokens.json.items.find((item: { id: string }) => item.id === created.json.id);
      assert.equal(token.usesLeft, 0);
      assert.equal(token.state, 'used');
    });

    test(`${RACERS} concurrent enrollments with a three-use token make exactly three nodes`, async () => {
      const created = await t.admin('POST', '/v1/tokens', { uses: 3 });
      assertWinners(await race([t], await racers(created.json.secret, RACERS, 'three')), 3);
      const nodes = await t.admin('GET', '/v1/nodes?limit=1000');
      assert.equal(nodes.json.items.filter((n: { name: string }) => n.name.startsWith('three-')).length, 3);
    });
  });
}

// Several replicas sharing one database is a PostgreSQL deployment (CONTRACT section 2).
for (const dialect of dialects().filter((d) => d === 'postgres')) {
  describe(`one-use tokens across two replicas (${dialect})`, () => {
    let a: TestServer;
    let b: TestServer;
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    before(async () => {
      replicas = await startReplicas(dialect);
      ({ a, b } = replicas);
    });
    after(async () => {
      await replicas.close();
    });

    test(`${RACERS} concurrent enrollments split over two replicas make exactly one node`, async () => {
      const created = await a.admin('POST', '/v1/tokens', {});
      assertWinners(await race([a, b], await racers(created.json.secret, RACERS, 'split')), 1);
      for (const replica of [a, b]) {
        const nodes = await replica.admin('GET', '/v1/nodes');
        assert.equal(nodes.json.items.length, 1);
      }
    });
  });
}
