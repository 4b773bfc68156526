import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { EventEnvelope, NodeView, TokenCreated, TokenView } from '@muster/proto';
import {
  agentArgsFromJoinLine,
  assertHealthy,
  reportedAfter,
  showNode,
  waitForNode,
} from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { type CliResult, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/**
 * CONTRACT section 11: `muster backup` is taken while the server works (agents heartbeating,
 * tokens being made); the backup restored into a fresh data dir (and, for PostgreSQL, a fresh
 * database) is the same control plane: its nodes, every token made before the backup, a ledger
 * that verifies under the key pinned before, and agents that reconnect with the certificates
 * they hold, without a new token, also one that renewed after the backup. One file per dialect (backup-load-*.test.ts), since each run
 * takes real processes a while on a shared machine.
 */
export function backupUnderLoad(dialect: 'sqlite' | 'postgres'): void {
  describe(`a backup taken under load and restored (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('the restored server serves the same fleet; its agents come back without a new token', async () => {
      const server = await sandbox.startServer(
        dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {},
      );
      const flags = server.adminFlags;
      const join_ = await sandbox.json<TokenCreated>(['token', 'create', '--uses', '3', ...flags]);
      const dirs = new Map(NAMES.map((name) => [name, sandbox.tempDir(name)]));
      const start = (name: string) =>
        sandbox.spawn([
          ...agentArgsFromJoinLine(join_.agentCommand, server.agentUrl),
          '--name',
          name,
          '--data-dir',
          dirs.get(name)!,
        ]);
      const agents = new Map<string, MusterProcess>(NAMES.map((name) => [name, start(name)]));
      const before = new Map<string, NodeView>();
      for (const name of NAMES)
        before.set(name, await waitForNode(sandbox, server, name, 'reports', reportedAfter(null)));
      // db-3's host is down while the load runs: it has seen no checkpoint past the backup.
      await agents.get('db-3')!.stop('SIGTERM');
      const vkey = (await sandbox.json<{ vkey: string }>(['ledger', 'key', ...flags])).vkey;

      // Load: tokens made one after another for as long as the backup runs.
      const acknowledged: string[] = [];
      let loading = true;
      const load = (async () => {
        while (loading) {
          const made = await sandbox.json<TokenCreated>(['token', 'create', '--ttl', '1d', ...flags]);
          acknowledged.push(made.id);
        }
      })();
      while (acknowledged.length < 2) await new Promise((r) => setTimeout(r, 50));

      const passphrase = join(sandbox.tempDir('pass'), 'pass');
      writeFileSync(passphrase, 'copper-meadow-silent-tide\n', { mode: 0o600 });
      const file = join(sandbox.tempDir('backups'), 'fleet.age');
      const beforeBackup = [...acknowledged];
      const beatsBefore = Date.now();
      const backedUp = await runLong(sandbox, [
        'backup',
        '--data-dir',
        server.dataDir,
        ...(dialect === 'postgres' ? ['--db', dbOf(server)] : []),
        '--out',
        file,
        '--passphrase-file',
        passphrase,
      ]);
      const duringBackup = acknowledged.length - beforeBackup.length;
      loading = false;
      await load;
      assert.equal(backedUp.code, 0, describeResult(backedUp));
      assert.match(backedUp.stdout, /^Backup written to .+fleet\.age \(.+\): the (sqlite|postgres) store /);
      assert.ok(duringBackup > 0, 'tokens were made while the backup ran');
      for (const name of ['db-1', 'db-2'])
        await waitForNode(
          sandbox,
          server,
          name,
          'heartbeats during the backup',
          reportedAfter(new Date(beatsBefore).toISOString()),
        );

      // db-1 renews after the backup (an operator asks it to move to a fresh key): the restored
      // server has never seen the certificate it will come back with.
      const asked = await sandbox.run(['nodes', 'rotate', 'db-1', ...flags]);
      assert.equal(asked.code, 0, describeResult(asked));
      const renewedAfter = await waitForNode(
        sandbox,
        server,
        'db-1',
        'renews after the backup',
        (n) => n.cert?.serial !== before.get('db-1')!.cert?.serial,
      );
      const expectSerial = new Map([...before].map(([name, n]) => [name, n.cert?.serial]));
      expectSerial.set('db-1', renewedAfter.cert?.serial);

      const restoredDir = join(sandbox.tempDir('restored'), 'data');
      const restoredDb = dialect === 'postgres' ? await sandbox.postgresDatabase() : undefined;
      const restored = await runLong(sandbox, [
        'restore',
        file,
        '--data-dir',
        restoredDir,
        ...(restoredDb ? ['--db', restoredDb] : []),
        '--passphrase-file',
        passphrase,
      ]);
      assert.equal(restored.code, 0, describeResult(restored));
      assert.match(
        restored.stdout,
        /^Restored .+fleet\.age \(made by Muster \S+ at \S+, from a (sqlite|postgres) store\)/,
      );

      // The agents dial the old address: the restored server takes its place there.
      const oldSize = (await sandbox.json<{ size: number }>(['ledger', 'checkpoint', ...flags])).size;
      await server.process.stop('SIGTERM');
      const back = await sandbox.startServer({
        dataDir: restoredDir,
        listen: new URL(server.agentUrl).host,
        ...(restoredDb ? { db: restoredDb } : {}),
      });
      const restartedAt = new Date().toISOString();
      await assertSameFleet(sandbox, back, before, beforeBackup, join_.id);
      const verified = await sandbox.run(['ledger', 'verify', '--key', vkey, ...back.adminFlags]);
      assert.equal(verified.code, 0, describeResult(verified));
      assert.match(verified.stdout, /^verified: \d+ entries, consistent with the signed checkpoint$/m);

      const restoredSize = (
        await sandbox.json<{ size: number }>(['ledger', 'checkpoint', ...back.adminFlags])
      ).size;
      assert.ok(restoredSize < oldSize, 'decisions made after the snapshot are not in the backup');

      const was1 = before.get('db-1')!;
      agents.set('db-3', start('db-3')); // the host that was down comes back, with its identity
      for (const [name, was] of before) {
        const now = await reconnected(sandbox, back, name, restartedAt);
        assert.equal(now.id, was.id, `${name} is the same node`);
        assert.equal(
          now.cert?.serial,
          expectSerial.get(name),
          `${name} reconnected with the certificate it holds`,
        );
        if (name === 'db-3') assertHealthy(now);
        else assertHealthyOrWitnessedRollback(now, dirs.get(name)!, restoredSize);
      }
      assert.ok(
        [...agents.values()].every((a) => a.running),
        'no agent had to be restarted',
      );
      const recovered = await sandbox.json<EventEnvelope[]>([
        'events',
        '--kind',
        'node.certificate_recovered',
        ...back.adminFlags,
      ]);
      assert.deepEqual(
        recovered.map((e) => [e.nodeId, e.actor, e.data.serial, e.data.previousSerial]),
        [[was1.id, `node:${was1.id}`, renewedAfter.cert?.serial, was1.cert?.serial]],
        'the certificate db-1 renewed after the backup was taken back, once, as a decision',
      );
      const tokens = await sandbox.json<TokenView[]>(['token', 'ls', ...back.adminFlags]);
      assert.equal(
        tokens.find((t) => t.id === join_.id)?.usesLeft,
        0,
        'no enrollment used the join token again',
      );
    });
  });
}

/**
 * Waits for an agent to report to the restored server. An agent that lost its server retries
 * with exponential backoff capped at 60 s, so the wait is bounded by that cap, not by the
 * 20 s the other waits take.
 */
async function reconnected(sandbox: Sandbox, back: ServerUnderTest, name: string, since: string) {
  return waitFor(
    `${name} to report to the restored server`,
    async () => {
      const node = await showNode(sandbox, back, name);
      return reportedAfter(since)(node) ? node : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/**
 * Runs a backup or restore to its end. Each derives the scrypt key of the passphrase (about a
 * second of CPU, by design), which on a crowded two-core test machine can take longer than the
 * 20 s other verbs are given; the bound is for a hung process, not a measure of speed.
 */
async function runLong(sandbox: Sandbox, args: readonly string[]): Promise<CliResult> {
  const proc = sandbox.spawn(args);
  const exit = await proc.waitForExit(120_000);
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
}

const NAMES = ['db-1', 'db-2', 'db-3'];

/**
 * An agent that watched the old server's ledger past the backup (tokens were made after the
 * snapshot, and a checkpoint is signed every second) holds a checkpoint the restored ledger does
 * not extend: its ledger-witness check says so, as it must, with the evidence in its data dir.
 * That, and only that, may keep it from `ok`.
 */
function assertHealthyOrWitnessedRollback(node: NodeView, agentDir: string, restoredSize: number): void {
  const witness = node.reasons.filter((r) => r.startsWith('check ledger-witness failing'));
  if (witness.length === 0) {
    assertHealthy(node);
    return;
  }
  const others = node.reasons.filter((r) => !witness.includes(r));
  assertHealthy({ ...node, status: others.length > 0 ? 'attention' : 'ok', reasons: others });
  const evidence = readdirSync(join(agentDir, 'evidence'));
  assert.ok(evidence.length > 0, `${node.name} fails ledger-witness without evidence`);
  for (const file of evidence) {
    const { reason } = JSON.parse(readFileSync(join(agentDir, 'evidence', file), 'utf8')) as {
      reason: string;
    };
    const held =
      /^the log shrank from (\d+) to \d+ entries$|^checkpoint \d+ does not extend the checkpoint (\d+) this agent holds$/.exec(
        reason,
      );
    assert.ok(held, `${node.name}: ${reason}`);
    assert.ok(
      Number(held[1] ?? held[2]) > restoredSize,
      `${node.name} held a checkpoint past the backup: ${reason}`,
    );
  }
}

function dbOf(server: ServerUnderTest): string {
  const i = server.process.args.indexOf('--db');
  return server.process.args[i + 1]!;
}

/** The nodes and tokens the old server had: the same ids, and every token made before the backup. */
async function assertSameFleet(
  sandbox: Sandbox,
  back: ServerUnderTest,
  before: Map<string, NodeView>,
  tokensBefore: readonly string[],
  joinToken: string,
): Promise<void> {
  const nodes = await sandbox.json<NodeView[]>(['nodes', 'ls', ...back.adminFlags]);
  assert.deepEqual(
    nodes.map((n) => [n.name, n.id]).sort(),
    [...before].map(([name, n]) => [name, n.id]).sort(),
  );
  const tokens = new Set(
    (await sandbox.json<TokenView[]>(['token', 'ls', ...back.adminFlags])).map((t) => t.id),
  );
  for (const id of [joinToken, ...tokensBefore])
    assert.ok(tokens.has(id), `token ${id}, made before the backup, is there`);
}
