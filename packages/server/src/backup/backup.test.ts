import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import {
  createPgDatabase,
  type Dialect,
  enrollAgent,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestServer,
} from '../testing/harness.js';
import { archiveBytes } from './archive.js';
import { takeBackup } from './backup.js';
import type { BackupManifest } from './format.js';
import { RestoreRefusedError, restoreBackup } from './restore.js';
import { seal } from './seal.js';

const PASSPHRASE = 'granite-willow-ember-fjord';

/** SQLite to SQLite always; across dialects (rows loaded into a new schema) where PostgreSQL runs. */
const pairs: Array<[Dialect, Dialect]> = process.env.MUSTER_TEST_PG_URL
  ? [
      ['sqlite', 'postgres'],
      ['postgres', 'sqlite'],
    ]
  : [['sqlite', 'sqlite']];

/** What a user would compare: nodes, tokens, events and the signed ledger. */
async function fleetOf(t: TestServer) {
  const nodes = (await t.admin('GET', '/v1/nodes?limit=1000')).json.items.map((n: { id: string }) => n.id);
  const tokens = (await t.admin('GET', '/v1/tokens')).json.items.map((x: { id: string }) => x.id);
  const events = (await t.admin('GET', '/v1/events?limit=1000')).json.items.map((e: { id: number }) => e.id);
  const ledger = await t.admin('GET', '/v1/ledger/entries?start=0&end=1000');
  return { nodes: nodes.sort(), tokens: tokens.sort(), events: events.sort(), ledger: ledger.json.entries };
}

for (const [from, to] of pairs) {
  describe(`a ${from} store backed up and restored into ${to}`, () => {
    let work: string;
    let source: TestServer;
    let restored: TestServer | undefined;
    let target: Awaited<ReturnType<typeof createPgDatabase>> | undefined;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'muster-backup-test-'));
      source = await startTestServer(from);
    });
    after(async () => {
      await restored?.close();
      await source?.close();
      await target?.drop();
      await rm(work, { recursive: true, force: true });
    });

    test('the restored server has the same nodes, tokens, events and ledger; the agent is accepted', async () => {
      const agent = await enrollAgent(source, { name: 'web-1' });
      assert.equal((await agent.heartbeat()).status, 202);
      agent.agent.destroy();
      await source.admin('POST', '/v1/events', { kind: 'note', text: 'before the backup' });
      const out = join(work, 'fleet.age');
      const made = await takeBackup({ dataDir: source.dataDir, db: source.db, out, passphrase: PASSPHRASE });
      assert.equal(made.manifest.dialect, from);
      assert.equal(made.manifest.store.form, from === 'sqlite' ? 'sqlite' : 'rows');
      const expected = await fleetOf(source);
      await source.close();

      const dataDir = join(work, 'restored');
      target = to === 'postgres' ? await createPgDatabase() : undefined;
      const db = target?.url ?? `sqlite:${join(dataDir, 'muster.db')}`;
      await restoreBackup({ file: out, dataDir, db, passphrase: PASSPHRASE });
      restored = await startTestServer(to, { dataDir, db });
      assert.deepEqual(await fleetOf(restored), expected);

      const https = new HttpsAgent({ key: agent.keyPem, cert: agent.certPem, ca: agent.caPem });
      try {
        const beat = await httpsJson(`${restored.server.agentUrl}/v1/agent/heartbeat`, {
          body: sampleHeartbeat(1),
          agent: https,
        });
        assert.equal(beat.status, 202, beat.body);
        assert.equal(beat.json.nodeId, agent.nodeId);
      } finally {
        https.destroy();
      }
      // The sequences go on after the loaded keys: a new decision gets the next number.
      const enrolled = await enrollAgent(restored, { name: 'web-2' });
      enrolled.agent.destroy();
      const entries = (await restored.admin('GET', '/v1/ledger/entries?start=0&end=1000')).json.entries;
      assert.ok(entries.length > expected.ledger.length);
    });
  });
}

describe('a backup whose manifest a restore must not trust', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'muster-backup-craft-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  /** A backup as `muster backup` writes one, of a manifest the test chooses. */
  async function crafted(manifest: BackupManifest, bodies: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(work, 'src-'));
    for (const f of manifest.files) {
      const body = bodies[f.path] ?? '';
      f.size = Buffer.byteLength(body);
      f.sha256 = createHash('sha256').update(body).digest('hex');
      writeFileSync(join(dir, f.sha256), body);
    }
    const file = join(work, `${manifest.files.length}-${Date.now()}.age`);
    const sealed = await seal(
      archiveBytes(manifest, (f) => join(dir, f.sha256)),
      PASSPHRASE,
    );
    await pipeline(sealed, createWriteStream(file));
    return file;
  }

  const manifest = (files: string[], migrations = ['0001_skeleton']): BackupManifest => ({
    format: 1,
    muster: '9.9.9',
    createdAt: new Date().toISOString(),
    dialect: 'sqlite',
    store: { form: 'rows', path: 'store/rows.jsonl', migrations },
    files: files.map((path) => ({ path, size: 0, mode: 0o600, sha256: '' })),
  });

  test('a file path that climbs out of the data dir is refused, and nothing is written', async () => {
    const file = await crafted(manifest(['data/ca.pem', 'data/../../escaped', 'store/rows.jsonl']), {});
    const dataDir = join(work, 'climb', 'data');
    await assert.rejects(
      restoreBackup({ file, dataDir, db: `sqlite:${join(dataDir, 'muster.db')}`, passphrase: PASSPHRASE }),
      /its manifest is malformed \(a file path\)/,
    );
    assert.deepEqual(readdirSync(join(work, 'climb')), []);
    assert.equal(existsSync(join(work, 'escaped')), false);
  });

  test('a backup from a release with migrations this one does not know is refused before the store is touched', async () => {
    const file = await crafted(
      manifest(['data/ca.pem', 'data/ca.key', 'store/rows.jsonl'], ['0001_skeleton', '0099_future']),
      {},
    );
    const dataDir = join(work, 'future', 'data');
    await assert.rejects(
      restoreBackup({ file, dataDir, db: `sqlite:${join(dataDir, 'muster.db')}`, passphrase: PASSPHRASE }),
      (err: Error) =>
        err instanceof RestoreRefusedError &&
        /made by Muster 9\.9\.9, whose schema has migrations this release does not know \(0099_future\)/.test(
          err.message,
        ),
    );
    assert.deepEqual(readdirSync(join(work, 'future')), []);
  });
});
