import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { parseCheckpointBody } from '@muster/proto';
import { agentArgsFromJoinLine, waitForNode } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

/** The size of the checkpoint an agent holds, or 0 before its first. */
function heldSize(agentDir: string): number {
  try {
    return parseCheckpointBody(`${readFileSync(join(agentDir, 'checkpoint'), 'utf8').split('\n\n')[0]!}\n`)
      .size;
  } catch {
    return 0;
  }
}

// Agents are witnesses: a server that rewrites the ledger's history behind their back serves
// checkpoints that do not extend the ones they hold, and they say so with evidence.
describe('agents witness the ledger', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('a rewritten history is caught by an agent holding an earlier checkpoint', async () => {
    const server = await sandbox.startServer();
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'witness-1',
      ...server.adminFlags,
    ]);
    const agentDir = sandbox.tempDir('agent');
    const agent = sandbox.spawn([
      ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
      '--data-dir',
      agentDir,
    ]);
    for (let i = 0; i < 4; i++) await sandbox.json(['token', 'create', ...server.adminFlags]);
    // token.created ×5 and node.enrolled: six entries, witnessed as they are checkpointed.
    await waitFor('the agent to hold a checkpoint of 6 entries', async () =>
      heldSize(agentDir) >= 6 ? true : undefined,
    );
    assert.deepEqual(
      readdirSync(agentDir).includes('evidence'),
      false,
      'no evidence while the log only grows',
    );

    // Rewrite history in the server's store: the hash of the first four entries' subtree.
    const require = createRequire(import.meta.url);
    const major = Number(process.versions.node.split('.')[0]);
    const Database = require(major >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20');
    const db = new Database(join(server.dataDir, 'muster.db'));
    db.pragma('busy_timeout = 5000');
    db.prepare('update ledger_nodes set hash = ? where level = 2 and idx = 0').run(
      randomBytes(32).toString('hex'),
    );
    db.close();
    await sandbox.json(['token', 'create', ...server.adminFlags]); // a new entry, a new checkpoint

    const evidence = await waitFor('the agent to keep evidence', async () => {
      const files = (() => {
        try {
          return readdirSync(join(agentDir, 'evidence'));
        } catch {
          return [];
        }
      })();
      return files.length > 0 ? files : undefined;
    });
    const kept = JSON.parse(readFileSync(join(agentDir, 'evidence', evidence[0]!), 'utf8'));
    assert.match(kept.reason, /does not extend the checkpoint 6/);
    assert.match(kept.held, /\n6\n/);
    assert.ok(parseCheckpointBody(`${kept.offered.split('\n\n')[0]}\n`).size > 6);
    // The evidence is written before the log line: wait for the line too.
    await waitFor('the agent to log the security event', async () =>
      agent.stderr.split('\n').some((l) => l.includes('"level":50') && l.includes('security: the ledger'))
        ? true
        : undefined,
    );
    const node = await waitForNode(sandbox, server, 'witness-1', 'reports the failed witness check', (n) =>
      n.reasons.some((r) => r.startsWith('check ledger-witness failing')),
    );
    assert.notEqual(node.status, 'ok');
    assert.equal(heldSize(agentDir), 6, 'the agent keeps holding the checkpoint it verified');
  });
});
