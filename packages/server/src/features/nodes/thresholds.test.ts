import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serverConfigFrom } from '../../config.js';
import { ConfigError } from '../../errors.js';
import {
  createToken,
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assessNode, DEFAULT_THRESHOLDS, versionBehind } from './status.js';

const base = {
  now: 1_000_000,
  heartbeatIntervalMs: 10_000,
  enrolledAt: 0,
  lastSeenAt: 999_000,
  decommissionedAt: null,
  certNotAfter: 10 ** 12,
  cpus: 2,
};
const withDisk = (usedPct: number) => ({
  ...sampleHeartbeat(1),
  disks: [{ mount: '/var', totalBytes: 100, freeBytes: 100 - usedPct }],
});

test('disk, memory and load limits come from the profile, the defaults otherwise', () => {
  assert.equal(assessNode({ ...base, latest: withDisk(85) }).status, 'ok');
  const strict = { ...DEFAULT_THRESHOLDS, diskAttentionPct: 80, diskCriticalPct: 84 };
  assert.deepEqual(assessNode({ ...base, latest: withDisk(82), thresholds: strict }), {
    status: 'attention',
    reasons: ['disk /var 82% full'],
  });
  assert.equal(assessNode({ ...base, latest: withDisk(85), thresholds: strict }).status, 'critical');
});

test('an agent behind the server is a reason to upgrade it; ahead or equal is not', () => {
  assert.equal(versionBehind('0.0.9', '0.1.0'), true);
  assert.equal(versionBehind('0.1.0', '0.1.0'), false);
  assert.equal(versionBehind('0.2.0', '0.1.0'), false);
  assert.equal(versionBehind('garbage', '0.1.0'), false);
  const drift = assessNode({ ...base, latest: withDisk(10), agentVersion: '0.0.9', serverVersion: '0.1.0' });
  assert.deepEqual(drift, {
    status: 'attention',
    reasons: ['agent 0.0.9 is behind the server (0.1.0); upgrade it'],
  });
});

describe('--thresholds FILE', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-thresholds-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('every bad key and value is listed; the defaults fill in what a profile leaves out', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({ db: { diskAttentionPct: 150, bogus: 1 }, web: { loadAttentionPerCpu: 5 } }),
    );
    let problems: string[] = [];
    try {
      serverConfigFrom({ thresholds: bad });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      problems = err.problems;
    }
    assert.ok(problems.some((p) => p.includes('db.bogus is not a known limit')));
    assert.ok(problems.some((p) => p.includes('db.diskAttentionPct must be a number')));
    assert.ok(problems.some((p) => p.includes('web: each attention limit must be below its critical limit')));
    assert.throws(() => serverConfigFrom({ thresholds: join(dir, 'missing.json') }), /cannot read/);

    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ db: { diskAttentionPct: 80 } }));
    const config = serverConfigFrom({ thresholds: good });
    assert.equal(config.thresholds.db!.diskAttentionPct, 80);
    assert.equal(config.thresholds.db!.diskCriticalPct, 97);
    assert.deepEqual(config.thresholds.default, DEFAULT_THRESHOLDS);
  });

  test('a running server judges each node by its profile', async () => {
    const file = join(dir, 'fleet.json');
    await writeFile(file, JSON.stringify({ db: { diskAttentionPct: 80 } }));
    const t: TestServer = await startTestServer('sqlite', { settings: { thresholds: file } });
    try {
      const db = await enrollAgent(t, { name: 'th-db', token: await createToken(t, { profile: 'db' }) });
      const web = await enrollAgent(t, { name: 'th-web' });
      assert.equal((await db.heartbeat(withDisk(85))).status, 202);
      assert.equal((await web.heartbeat(withDisk(85))).status, 202);
      const dbView = (await t.admin('GET', '/v1/nodes/th-db')).json;
      assert.equal(dbView.status, 'attention');
      assert.deepEqual(dbView.reasons, ['disk /var 85% full']);
      assert.equal((await t.admin('GET', '/v1/nodes/th-web')).json.status, 'ok');
      db.agent.destroy();
      web.agent.destroy();
    } finally {
      await t.close();
    }
  });
});
