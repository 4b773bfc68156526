import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { waitForNode } from '../support/fleet.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

const SYSTEMD = existsSync('/run/systemd/system');

// `--service NAME` on a host whose service manager cannot be asked: the node is not reported as
// down, it says the state is unknown and why.
describe('--service on this host', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('a service the host cannot judge shows as state unknown with the reason, attention rather than critical', async () => {
    const server = await sandbox.startServer();
    const token = await sandbox.json<TokenCreated>(['token', 'create', ...server.adminFlags]);
    const tokenFile = `${sandbox.tempDir('secret')}/join-token`;
    writeFileSync(tokenFile, token.secret, { mode: 0o600 });
    sandbox.spawn([
      'agent',
      '--server',
      server.agentUrl,
      '--ca-pin',
      token.caPin,
      '--token-file',
      tokenFile,
      '--name',
      'svc',
      '--service',
      'muster-e2e-nosuch',
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    const expected = SYSTEMD
      ? 'service muster-e2e-nosuch is not running'
      : 'service muster-e2e-nosuch: state unknown, systemd not available (this host was not booted with systemd) and no process named muster-e2e-nosuch runs';
    const node = await waitForNode(sandbox, server, 'svc', 'reports its service', (n) => n.latest !== null);
    assert.ok(node.reasons.includes(expected), `reasons: ${node.reasons.join('; ')}`);
    if (!SYSTEMD) {
      // Critical only if this busy test machine's own load, disk or memory says so, never for the service.
      const others = node.reasons.filter((r) => r !== expected);
      assert.ok(
        node.status === 'attention' ||
          others.every((r) => /^(load [\d.]+ on|disk .+ full$|memory \d+% used$)/.test(r)),
        `${node.status}: ${node.reasons.join('; ')}`,
      );
    }
    const shown = await sandbox.run(['nodes', 'show', 'svc', ...server.adminFlags]);
    assert.equal(shown.code, 0, describeResult(shown));
    assert.match(
      shown.stdout,
      SYSTEMD
        ? /^ {2}service {5}muster-e2e-nosuch NOT RUNNING$/m
        : /^ {2}service {5}muster-e2e-nosuch state unknown: systemd not available \(this host was not booted with systemd\) and no process named muster-e2e-nosuch runs$/m,
    );
  });
});
