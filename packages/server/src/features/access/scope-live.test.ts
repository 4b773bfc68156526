import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import {
  createToken,
  dialects,
  enrollAgent,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { openSse, poll, type SseFrame } from '../events/sse.test-support.js';

/** Holds an agent channel open, as a running agent does, until the test ends. */
async function holdChannel(t: TestServer, agent: TestAgent): Promise<WebSocket> {
  const ws = new WebSocket(`${t.server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`, {
    ca: t.server.identity.ca.pem,
    key: agent.keyPem,
    cert: agent.certPem,
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`channel refused: ${res.statusCode}`)));
  });
  return ws;
}

const about = (frames: SseFrame[]) =>
  frames.map((f) => JSON.parse(f.data) as { kind: string; nodeId?: string; data: { text?: string } });

for (const dialect of dialects()) {
  describe(`the fleet summary and the live stream of a role narrowed to env=staging (${dialect})`, () => {
    let t: TestServer;
    let stan: string;
    const ids = new Map<string, string>();
    const channels: WebSocket[] = [];
    const agents: TestAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
      for (const [name, env] of [
        ['stage-1', 'staging'],
        ['stage-2', 'staging'],
        ['prod-1', 'prod'],
        ['prod-2', 'prod'],
      ] as const) {
        const agent = await enrollAgent(t, { name, token: await createToken(t, { labels: { env } }) });
        agents.push(agent);
        ids.set(name, agent.nodeId);
      }
      // One staging node and both prod nodes hold a channel.
      for (const agent of agents.filter((a) => a.name !== 'stage-2'))
        channels.push(await holdChannel(t, agent));
      await poll(async () => (await t.admin('GET', '/v1/fleet')).json.channelsHeld === 3);
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
      stan = (await userToken(t, 'stan', 'staging-watch')).secret;
    });
    after(async () => {
      for (const ws of channels) ws.terminate();
      for (const agent of agents) agent.agent.destroy();
      await t?.close();
    });

    test('GET /v1/fleet counts only the channels of staging nodes, and leaves out what the role may not read', async () => {
      const mine = await as(t, stan, 'GET', '/v1/fleet');
      assert.equal(mine.status, 200, mine.body);
      assert.equal(mine.json.channelsHeld, 1);
      assert.equal(
        mine.json.heartbeatsPerSec,
        null,
        'the server-wide heartbeat rate is not within the scope',
      );
      assert.equal(mine.json.ledger, null, 'staging-watch may not read the ledger');
      const all = await t.admin('GET', '/v1/fleet');
      assert.equal(all.json.channelsHeld, 3);
      assert.equal(typeof all.json.ledger.size, 'number');
    });

    test('GET /v1/events/stream sends only events about staging nodes, live and replayed', async () => {
      const live = await openSse(t.server.adminUrl, stan);
      assert.equal(live.status, 200);
      const admin = await openSse(t.server.adminUrl, t.server.identity.adminToken);
      await poll(() => live.comments.includes('connected') && admin.comments.includes('connected'));
      for (const [text, node] of [
        ['about prod-1', 'prod-1'],
        ['about the fleet', undefined],
        ['about stage-1', 'stage-1'],
        ['about prod-2', 'prod-2'],
        ['about stage-2', 'stage-2'],
      ] as const) {
        const res = await t.admin('POST', '/v1/events', {
          kind: 'note',
          text,
          ...(node ? { nodeId: ids.get(node) } : {}),
        });
        assert.equal(res.status, 201, res.body);
      }
      // The last note reaches both: everything before it has been offered to both.
      const last = (frames: SseFrame[]) => about(frames).some((e) => e.data.text === 'about stage-2');
      await live.until(last);
      await admin.until(last);
      const notes = (frames: SseFrame[]) =>
        about(frames)
          .filter((e) => e.kind === 'note')
          .map((e) => e.data.text);
      assert.deepEqual(notes(live.frames), ['about stage-1', 'about stage-2']);
      assert.deepEqual(notes(admin.frames), [
        'about prod-1',
        'about the fleet',
        'about stage-1',
        'about prod-2',
        'about stage-2',
      ]);
      live.close();
      admin.close();

      // From the start of history: the staging enrollments and notes, nothing about prod.
      const replay = await openSse(t.server.adminUrl, stan, { lastEventId: '0' });
      await replay.until(last);
      const staging = new Set([ids.get('stage-1'), ids.get('stage-2')]);
      const seen = about(replay.frames);
      assert.ok(
        seen.every((e) => staging.has(e.nodeId)),
        `saw ${seen.map((e) => `${e.kind}@${e.nodeId ?? 'none'}`).join(', ')}`,
      );
      assert.equal(seen.filter((e) => e.kind === 'node.enrolled').length, 2);
      replay.close();
    });

    test('a kind or node filter narrows a scoped stream further, never wider', async () => {
      const prod = await openSse(t.server.adminUrl, stan, {
        lastEventId: '0',
        query: `?node=${ids.get('prod-1')}`,
      });
      const stage = await openSse(t.server.adminUrl, stan, { lastEventId: '0', query: '?kind=note' });
      await t.admin('POST', '/v1/events', { kind: 'note', text: 'marker', nodeId: ids.get('stage-1') });
      await stage.until((frames) => about(frames).some((e) => e.data.text === 'marker'));
      assert.ok(about(stage.frames).every((e) => e.kind === 'note' && e.nodeId !== ids.get('prod-1')));
      // The prod stream gets nothing but comments; an admin's twin stream gets prod-1's events.
      const twin = await openSse(t.server.adminUrl, t.server.identity.adminToken, {
        lastEventId: '0',
        query: `?node=${ids.get('prod-1')}`,
      });
      await twin.until((frames) => about(frames).some((e) => e.data.text === 'about prod-1'));
      assert.deepEqual(prod.frames, []);
      prod.close();
      stage.close();
      twin.close();
    });
  });
}
