import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { caPinOf } from '@muster/host';
import { assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

const dialect = process.env.MUSTER_TEST_PG_URL ? 'postgres' : 'sqlite';

// CONTRACT section 11 over section 6: the queue is in the store, so an operator on one replica
// approves a host that only ever talks to another.
describe(`an enrollment request approved on one replica lets in an agent polling the other (${dialect})`, () => {
  const sandbox = new Sandbox();
  let a: ServerUnderTest;
  let b: ServerUnderTest;
  before(async () => {
    const db = dialect === 'postgres' ? await sandbox.postgresDatabase() : undefined;
    a = await sandbox.startServer(db ? { db } : {});
    b = await sandbox.startServer({ dataDir: a.dataDir, ...(db ? { db } : {}) });
  });
  after(() => sandbox.cleanup());

  test('asked on B, listed and approved on A, reporting through B', async () => {
    const pin = caPinOf(readFileSync(join(a.dataDir, 'ca.pem'), 'utf8'));
    const agent = sandbox.spawn([
      'agent',
      '--request',
      '--server',
      b.agentUrl,
      '--ca-pin',
      pin,
      '--name',
      'via-b',
      '--data-dir',
      sandbox.tempDir('host'),
    ]);
    const printed = await agent.waitForOutput(
      'the fingerprint',
      (p) => /^ {2}(sha256:[0-9a-f]{64})$/m.exec(p.stdout)?.[1],
    );
    const onA = await sandbox.json<Array<{ name: string; fingerprint: string }>>([
      'nodes',
      'pending',
      ...a.adminFlags,
    ]);
    assert.deepEqual(
      onA.map((r) => [r.name, r.fingerprint]),
      [['via-b', printed]],
    );
    const approved = await sandbox.run([
      'nodes',
      'approve',
      'via-b',
      '--fingerprint',
      printed,
      ...a.adminFlags,
    ]);
    assert.equal(approved.code, 0, describeResult(approved));
    assertHealthy(await waitForNode(sandbox, b, 'via-b', 'to report through B', reportedAfter(null)));
    await agent.stop();
  });
});
