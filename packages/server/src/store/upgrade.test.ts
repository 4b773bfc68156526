import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openCheckpoint, parseVerifierKey, verifyConsistency, verifyExport } from '@muster/proto';
import {
  createPgDatabase,
  type Dialect,
  dialects,
  enrollAgent,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestServer,
} from '../testing/harness.js';

/*
 * A store written by 0.1.0 (test/fixtures/store-0.1.0, made by scripts/make-store-fixture.mjs
 * with that release) is opened by today's server: it must migrate, and keep everything.
 */
const fixtures = new URL('../../../../test/fixtures/store-0.1.0/', import.meta.url).pathname;

interface FixtureManifest {
  tokens: { fleet: string; spare: string; revoked: string };
  agents: Array<{ nodeId: string; name: string; keyPem: string; certPem: string }>;
  decommissioned: string;
  events: number[];
  commands: string[];
  ledgerSize: number;
  checkpoint: string;
  vkey: string;
}

const manifests = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Record<
  Dialect,
  FixtureManifest
>;

/**
 * A copy of the fixture's data dir, as a restored backup would be: git keeps no file modes, so
 * the keys get back the 0600 the server wrote them with.
 */
function copyDataDir(dialect: Dialect): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-upgrade-'));
  cpSync(join(fixtures, dialect), dir, { recursive: true });
  rmSync(join(dir, 'dump.sql'), { force: true });
  for (const name of readdirSync(dir)) {
    // 0.1.0 left muster.db 0644 (the umask's); today's server narrows it.
    chmodSync(join(dir, name), name.endsWith('.key') || name.endsWith('.token') ? 0o600 : 0o644);
  }
  return dir;
}

/** Loads the plain-SQL dump into a database of its own, as an operator restores one with psql. */
async function restorePostgres(): Promise<Awaited<ReturnType<typeof createPgDatabase>>> {
  const pgDb = await createPgDatabase();
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-f', join(fixtures, 'postgres/dump.sql'), pgDb.url], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return pgDb;
}

const b64 = (s: string) => Buffer.from(s, 'base64');

/** An export as `muster ledger export` writes it, up to the checkpoint `note` at `size`. */
async function* exportLines(t: TestServer, note: string, size: number) {
  const key = await t.admin('GET', '/v1/ledger/key');
  const lines: string[] = [];
  const leaves: Buffer[] = [];
  for (let start = 0; start < size; ) {
    const page = await t.admin('GET', `/v1/ledger/entries?start=${start}&end=${size}`);
    for (const e of page.json.entries) {
      lines.push(e.entry);
      leaves.push(b64(e.leafHash));
    }
    start += page.json.entries.length;
  }
  yield JSON.stringify({
    vkey: key.json.vkey,
    checkpoint: note,
    leafHashes: Buffer.concat(leaves).toString('base64'),
  });
  yield* lines;
}

for (const dialect of dialects()) {
  describe(`a 0.1.0 store opened by this server (${dialect})`, () => {
    const old = manifests[dialect];
    let t: TestServer;
    let dataDir: string;
    let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | undefined;

    before(async () => {
      dataDir = copyDataDir(dialect);
      if (dialect === 'postgres') pgDb = await restorePostgres();
      t = await startTestServer(dialect, {
        dataDir,
        db: pgDb?.url ?? `sqlite:${join(dataDir, 'muster.db')}`,
      });
    });
    after(async () => {
      await t?.close();
      await pgDb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('migrates, and lists the nodes, tokens, events and commands it had', async () => {
      const nodes = await t.admin('GET', '/v1/nodes?limit=1000');
      assert.equal(nodes.status, 200);
      const byName = new Map(nodes.json.items.map((n: { name: string }) => [n.name, n]));
      for (const agent of old.agents.filter((a) => a.name !== old.decommissioned)) {
        const node = byName.get(agent.name) as { id: string; profile: string; latest: unknown };
        assert.equal(node?.id, agent.nodeId, `${agent.name} is listed with its id`);
        assert.equal(node.profile, 'web');
        assert.ok(node.latest, `${agent.name} keeps its last heartbeat`);
      }
      const gone = old.agents.find((a) => a.name === old.decommissioned)!;
      const decommissioned = await t.admin('GET', `/v1/nodes/${gone.nodeId}`);
      assert.equal(decommissioned.status, 200);
      assert.notEqual(decommissioned.json.decommissionedAt, null);

      const tokens = await t.admin('GET', '/v1/tokens');
      const token = (id: string) => tokens.json.items.find((x: { id: string }) => x.id === id);
      assert.equal(token(old.tokens.fleet)?.usesLeft, 7, 'three enrollments used three of ten');
      assert.equal(token(old.tokens.revoked)?.state, 'revoked');
      assert.equal(token(old.tokens.spare)?.usesTotal, 3);

      const events = await t.admin('GET', '/v1/events?limit=1000');
      assert.equal(events.status, 200);
      const ids = events.json.items.map((e: { id: number }) => e.id);
      for (const id of old.events) assert.ok(ids.includes(id), `event ${id} is listed`);
      const note = events.json.items.find((e: { id: number }) => e.id === old.events[0]);
      assert.equal(note.data.text, 'before the upgrade');

      if (dialect === 'sqlite') assert.equal(statSync(join(dataDir, 'muster.db')).mode & 0o777, 0o600);

      const command = await t.admin('GET', `/v1/commands/${old.commands[0]}`);
      assert.equal(command.status, 200);
      assert.equal(command.json.action, 'echo');
      assert.deepEqual(command.json.targets.map((x: { name: string }) => x.name).sort(), ['web-1', 'web-2']);
    });

    test('the ledger verifies and extends what 0.1.0 signed; enrollment and new decisions still work', async () => {
      const v = parseVerifierKey(old.vkey);
      const before = openCheckpoint(old.checkpoint, v);
      assert.equal(before.size, old.ledgerSize);

      const added = await enrollAgent(t, { name: 'web-4' });
      added.agent.destroy();
      // Other decisions may land meanwhile (the sweep expires 0.1.0's command): find ours by subject.
      const enrolled = await t.admin(
        'GET',
        `/v1/ledger/decisions?subject=${encodeURIComponent(`node:${added.nodeId}`)}&limit=5`,
      );
      assert.deepEqual(
        enrolled.json.items.map((d: { kind: string }) => d.kind),
        ['node.enrolled'],
      );
      const seq = enrolled.json.items[0].seq as number;
      assert.ok(seq > old.ledgerSize, 'the new decisions follow the old ones');
      const size = seq + 1;

      let note = '';
      for (let i = 0; i < 100 && openCheckpoint(note || old.checkpoint, v).size < size; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        note = (await t.admin('GET', '/v1/ledger/checkpoint')).body;
      }
      const now = openCheckpoint(note, v);
      assert.ok(now.size >= size, 'the server signs a checkpoint over the new entries with the old key');
      const proof = await t.admin('GET', `/v1/ledger/proof/consistency?from=${before.size}&to=${now.size}`);
      assert.ok(
        verifyConsistency(before.size, now.size, proof.json.hashes.map(b64), before.root, now.root),
        'the log is the old one with entries appended: nothing 0.1.0 signed was rewritten',
      );
      assert.deepEqual(await verifyExport(exportLines(t, note, now.size), old.vkey), {
        ok: true,
        size: now.size,
      });
    });

    test('an agent enrolled by 0.1.0 keeps working: its certificate is still accepted', async () => {
      const agent = old.agents.find((a) => a.name === 'web-1')!;
      const https = new HttpsAgent({
        key: agent.keyPem,
        cert: agent.certPem,
        ca: readFileSync(join(dataDir, 'ca.pem'), 'utf8'),
      });
      try {
        const res = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
          body: sampleHeartbeat(100),
          agent: https,
        });
        assert.equal(res.status, 202, res.body);
        assert.equal(res.json.nodeId, agent.nodeId);
      } finally {
        https.destroy();
      }
    });
  });
}
