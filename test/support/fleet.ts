import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeView } from '@muster/proto';
import { waitFor } from './processes.js';
import { describeResult, type Sandbox, type ServerUnderTest } from './sandbox.js';

/** Reasons that describe the machine running the tests rather than the agent or the server. */
const HOST_PRESSURE = /^(load [\d.]+ on \d+ CPUs|disk .+ \d+% full|memory \d+% used)$/;

/**
 * Asserts that a node reports and is healthy. The agent sends this host's real load, disks and
 * memory, so on a crowded test machine `attention` for those reasons alone is a correct answer;
 * anything else (offline, waiting for a heartbeat, a certificate problem) is not.
 */
export function assertHealthy(node: NodeView): void {
  if (node.status === 'ok') {
    assert.deepEqual(node.reasons, []);
    return;
  }
  assert.ok(
    (node.status === 'attention' || node.status === 'critical') &&
      node.reasons.length > 0 &&
      node.reasons.every((r) => HOST_PRESSURE.test(r)),
    `node ${node.name} is ${node.status}: ${node.reasons.join('; ')}`,
  );
}

/** The same judgement as `assertHealthy`, as a predicate for polls. */
export function isHealthy(node: NodeView): boolean {
  if (node.status === 'ok') return node.reasons.length === 0;
  return (
    (node.status === 'attention' || node.status === 'critical') &&
    node.reasons.length > 0 &&
    node.reasons.every((r) => HOST_PRESSURE.test(r))
  );
}

/** `muster nodes show NODE --json`. */
export function showNode(sandbox: Sandbox, server: ServerUnderTest, node: string): Promise<NodeView> {
  return sandbox.json<NodeView>(['nodes', 'show', node, ...server.adminFlags]);
}

/**
 * Polls `nodes show` until the node exists and `accept` returns true for it; returns the node as
 * last seen. A node not found yet (404, exit 1) is polled again: its agent may still be enrolling.
 */
export async function waitForNode(
  sandbox: Sandbox,
  server: ServerUnderTest,
  node: string,
  what: string,
  accept: (view: NodeView) => boolean,
): Promise<NodeView> {
  let last: NodeView | undefined;
  try {
    return await waitFor(`node ${node} ${what}`, async () => {
      const shown = await sandbox.run(['nodes', 'show', node, '--json', ...server.adminFlags]);
      if (shown.code === 1 && /\(404\)$/m.test(shown.stderr)) return undefined;
      assert.equal(shown.code, 0, `muster nodes show ${node} --json failed: ${describeResult(shown)}`);
      last = JSON.parse(shown.stdout) as NodeView;
      return accept(last) ? last : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen as ${JSON.stringify(last, null, 2)}`);
  }
}

/** True once the node has reported a heartbeat later than `after` (an ISO time, or null for any). */
export function reportedAfter(after: string | null): (view: NodeView) => boolean {
  return (view) =>
    view.lastSeenAt !== null && (after === null || Date.parse(view.lastSeenAt) > Date.parse(after));
}

/**
 * The argv of the `muster agent …` line a join token prints, for running it as a child process.
 * The server is given as the agent plane actually bound: with `--listen 127.0.0.1:0` the server
 * prints port 0 in its join lines, because its public URL is settled before it listens. The
 * line pipes the token in (`printf '%s' TOKEN | muster agent … --token-file -`); here it goes
 * through a 0600 file instead, as under a service manager, so the argv can be spawned alone.
 */
export function agentArgsFromJoinLine(joinLine: string, agentUrl: string): string[] {
  const piped = /^printf '%s' '([A-Za-z0-9_-]+)' \| (.*)$/.exec(joinLine.trim());
  const words = (piped ? piped[2]! : joinLine).trim().split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ['muster', 'agent'], `not a muster agent line: ${joinLine}`);
  const args = words.slice(1);
  const server = args.indexOf('--server');
  assert.ok(server > 0 && args[server + 1], `the join line names no --server: ${joinLine}`);
  assert.equal(new URL(args[server + 1]!).hostname, new URL(agentUrl).hostname);
  args[server + 1] = agentUrl;
  if (piped) {
    const stdin = args.indexOf('--token-file');
    assert.ok(stdin > 0 && args[stdin + 1] === '-', `the join line pipes a token nothing reads: ${joinLine}`);
    args[stdin + 1] = tokenFile(piped[1]!);
  }
  return args;
}

/** Writes a join token to a file only its owner can read; removed when the test process ends. */
function tokenFile(token: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-e2e-join-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'join-token');
  writeFileSync(path, token, { mode: 0o600 });
  return path;
}
