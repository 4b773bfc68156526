import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Command, formatPublicKey, type Policy, signCommand, signPolicy } from '@muster/proto';
import {
  createToken,
  dialects,
  enrollAgent,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { assertProblem } from '../../testing/problems.js';

const operator = generateKeyPairSync('ed25519');

function signed(t: TestServer, id: string, node: string) {
  const now = t.clock.now();
  const command: Command = {
    v: 1,
    id,
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    operator: 'ops',
    target: { nodes: [node] },
    action: 'noop',
    args: {},
  };
  return { command, signature: signCommand(command, operator.privateKey) };
}

for (const dialect of dialects()) {
  describe(`listings filtered by a role narrowed to env=staging (${dialect})`, () => {
    let t: TestServer;
    let secret: string;
    before(async () => {
      t = await startTestServer(dialect);
      const policy: Policy = {
        version: 1,
        operators: [{ name: 'ops', publicKey: formatPublicKey(operator.publicKey), profiles: ['*'] }],
        profiles: { default: { actions: { noop: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 } } } },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      assert.equal(
        (await t.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) })).status,
        201,
      );
      for (const [name, env] of [
        ['stage-1', 'staging'],
        ['stage-2', 'staging'],
        ['prod-1', 'prod'],
        ['prod-2', 'prod'],
      ] as const) {
        const agent = await enrollAgent(t, { name, token: await createToken(t, { labels: { env } }) });
        agent.agent.destroy();
      }
      for (const [id, node] of [
        ['cmd-stage-0001', 'stage-1'],
        ['cmd-prod-00001', 'prod-1'],
      ] as const)
        assert.equal((await t.admin('POST', '/v1/commands', signed(t, id, node))).status, 202, id);
      const role = await t.admin('POST', '/v1/roles', {
        name: 'staging-watch',
        allow: [
          {
            verbs: ['read'],
            resources: ['nodes', 'events', 'commands'],
            nodes: { labels: { env: 'staging' } },
          },
        ],
      });
      assert.equal(role.status, 200, role.body);
      secret = (await userToken(t, 'stan', 'staging-watch')).secret;
    });
    after(() => t?.close());

    test('GET /v1/nodes shows only the staging nodes; an admin sees all', async () => {
      const mine = await as(t, secret, 'GET', '/v1/nodes');
      assert.equal(mine.status, 200, mine.body);
      assert.deepEqual(
        mine.json.items.map((n: { name: string }) => n.name),
        ['stage-1', 'stage-2'],
      );
      const all = await t.admin('GET', '/v1/nodes');
      assert.equal(all.json.items.length, 4);
    });

    test('GET /v1/events shows only events about staging nodes, none about no node', async () => {
      const mine = await as(t, secret, 'GET', '/v1/events?limit=1000');
      assert.equal(mine.status, 200, mine.body);
      const names = new Map(
        (await t.admin('GET', '/v1/nodes')).json.items.map((n: { id: string; name: string }) => [
          n.id,
          n.name,
        ]),
      );
      const about = mine.json.items.map((e: { nodeId?: string }) => names.get(e.nodeId ?? '') ?? 'none');
      assert.ok(about.length >= 2, 'the enrollments of the staging nodes are there');
      assert.ok(
        about.every((n: string) => n.startsWith('stage-')),
        `saw events about ${[...new Set(about)].join(', ')}`,
      );
      const all = await t.admin('GET', '/v1/events?limit=1000');
      assert.ok(all.json.items.length > mine.json.items.length);
    });

    test('GET /v1/commands shows only commands on staging nodes', async () => {
      const mine = await as(t, secret, 'GET', '/v1/commands');
      assert.equal(mine.status, 200, mine.body);
      assert.deepEqual(
        mine.json.items.map((c: { id: string }) => c.id),
        ['cmd-stage-0001'],
      );
      assert.equal((await t.admin('GET', '/v1/commands')).json.items.length, 2);
    });

    test('a command from a narrowed role is accepted on its nodes and refused, recorded, outside them', async () => {
      const role = await t.admin('POST', '/v1/roles', {
        name: 'staging-ops',
        allow: [
          { verbs: ['read', 'create'], resources: ['commands'], nodes: { labels: { env: 'staging' } } },
        ],
      });
      assert.equal(role.status, 200, role.body);
      const ops = (await userToken(t, 'olga', 'staging-ops')).secret;
      const outside = await as(t, ops, 'POST', '/v1/commands', signed(t, 'cmd-olga-prod1', 'prod-1'));
      const problem = assertProblem(outside, 403, 'forbidden');
      assert.equal(problem.detail, 'role staging-ops may not create commands outside its scope (prod-1)');
      const events = await t.admin('GET', '/v1/events?kind=access.denied');
      assert.ok(events.json.items.some((e: { id: number }) => e.id === outside.json.eventId));
      assert.equal((await t.admin('GET', '/v1/commands/cmd-olga-prod1')).status, 404, 'nothing was stored');
      const inside = await as(t, ops, 'POST', '/v1/commands', signed(t, 'cmd-olga-stage1', 'stage-1'));
      assert.equal(inside.status, 202, inside.body);
      assert.equal((await as(t, ops, 'GET', '/v1/commands/cmd-olga-stage1')).status, 200);
      const other = assertProblem(await as(t, ops, 'GET', '/v1/commands/cmd-prod-00001'), 403, 'forbidden');
      assert.equal(
        other.detail,
        'role staging-ops may not read commands outside its scope (command cmd-prod-00001)',
      );
      const ledger = await t.admin('GET', '/v1/ledger/decisions?subject=command:cmd-olga-stage1');
      assert.equal(ledger.json.items[0].actor, 'user:olga');
    });
  });
}
