import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { MetricsSampler } from './metrics.js';

const SYSTEMD = existsSync('/run/systemd/system');

test('--service on this host: a running process is active; a name nothing answers for is unknown without systemd, with why', async () => {
  const sample = await new MetricsSampler(['muster-no-such-service', 'node']).sample(
    0,
    new Date().toISOString(),
  );
  const [missing, node] = sample.services;
  if (SYSTEMD) {
    // systemd answers for both: no unit runs by either name.
    assert.equal(missing!.active, false);
    assert.notEqual(missing!.state, 'active');
  } else {
    assert.deepEqual(missing, {
      name: 'muster-no-such-service',
      active: false,
      state: 'unknown',
      reason:
        process.platform === 'linux'
          ? 'systemd not available (this host was not booted with systemd) and no process named muster-no-such-service runs'
          : `systemd not available (no systemd on ${process.platform})`,
    });
    // This test runs in a process named node: without systemd, a process of that name is the answer.
    if (process.platform === 'linux') assert.deepEqual(node, { name: 'node', active: true });
  }
});
