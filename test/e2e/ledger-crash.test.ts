import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openCheckpoint, parseVerifierKey, verifyConsistency } from '@muster/proto';
import { DEADLINE_MS } from '../support/processes.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

// kill -9 in the middle of a stream of decisions: after a restart, every decision the server
// acknowledged is in the ledger, with no gaps, and the log is consistent with every checkpoint
// it signed before the crash.
describe('the ledger survives kill -9', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('every acknowledged decision is kept and every earlier checkpoint still holds', async () => {
    const server = await sandbox.startServer();
    const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const api =
      (base: string) =>
      (path: string, init: RequestInit = {}) =>
        fetch(`${base}${path}`, {
          ...init,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
    const call = api(server.adminUrl);
    const vkey = ((await (await call('/v1/ledger/key')).json()) as { vkey: string }).vkey;
    const verifier = parseVerifierKey(vkey);

    const acknowledged: string[] = [];
    const checkpoints: Array<{ size: number; root: Buffer }> = [];
    let crashed = false;
    const writers = Array.from({ length: 16 }, async () => {
      while (!crashed) {
        try {
          const res = await call('/v1/tokens', { method: 'POST', body: '{}' });
          if (res.status === 201) acknowledged.push(((await res.json()) as { id: string }).id);
        } catch {
          return; // the connection died with the server: what was not answered was not promised
        }
      }
    });
    const watcher = (async () => {
      while (!crashed) {
        try {
          const res = await call('/v1/ledger/checkpoint');
          if (res.status === 200) checkpoints.push(openCheckpoint(await res.text(), verifier));
        } catch {
          return;
        }
      }
    })();
    const deadline = Date.now() + DEADLINE_MS;
    while (acknowledged.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      acknowledged.length >= 300,
      `only ${acknowledged.length} decisions were acknowledged before the deadline`,
    );
    await server.process.stop('SIGKILL', DEADLINE_MS);
    crashed = true;
    await Promise.all([...writers, watcher]);
    const signedBefore = checkpoints.filter((c) => c.size > 0);
    assert.ok(signedBefore.length > 0, 'checkpoints were published before the crash');

    const restarted = await sandbox.startServer({ dataDir: server.dataDir });
    const exportFile = join(sandbox.tempDir('export'), 'ledger.jsonl');
    const exported = await sandbox.run(['ledger', 'export', '--out', exportFile, ...restarted.adminFlags]);
    assert.equal(exported.code, 0, describeResult(exported));
    const verified = await sandbox.run(['ledger', 'verify', '--export', exportFile, '--key', vkey]);
    assert.equal(verified.code, 0, describeResult(verified));
    assert.match(verified.stdout, /^verified: \d+ entries/);

    const lines = readFileSync(exportFile, 'utf8').trimEnd().split('\n').slice(1);
    const created = new Set(
      lines
        .map((l) => JSON.parse(l))
        .filter((e) => e.kind === 'token.created')
        .map((e) => e.subject),
    );
    for (const id of acknowledged)
      assert.ok(created.has(`token:${id}`), `acknowledged token ${id} is in the ledger`);

    const now = openCheckpoint(
      await (await api(restarted.adminUrl)('/v1/ledger/checkpoint')).text(),
      verifier,
    );
    assert.equal(now.size, lines.length);
    for (const cp of signedBefore) {
      const res = await api(restarted.adminUrl)(
        `/v1/ledger/proof/consistency?from=${cp.size}&to=${now.size}`,
      );
      const { hashes } = (await res.json()) as { hashes: string[] };
      assert.ok(
        verifyConsistency(
          cp.size,
          now.size,
          hashes.map((h) => Buffer.from(h, 'base64')),
          cp.root,
          now.root,
        ),
        `the log is consistent with the checkpoint of size ${cp.size} signed before the crash`,
      );
    }
  });
});
