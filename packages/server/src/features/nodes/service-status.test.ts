import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Heartbeat, Service } from '@muster/proto';
import { assessNode } from './status.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const GiB = 2 ** 30;

/** A healthy node on schedule whose latest heartbeat reports these services. */
function withServices(services: Service[]) {
  const latest: Heartbeat = {
    seq: 1,
    sentAt: new Date(NOW).toISOString(),
    uptimeSec: 100,
    load: [0.5, 0.5, 0.5],
    cpuPct: 10,
    memory: { totalBytes: 8 * GiB, availableBytes: 6 * GiB },
    disks: [{ mount: '/', totalBytes: 100 * GiB, freeBytes: 60 * GiB }],
    services,
    checks: [],
  };
  return assessNode({
    now: NOW,
    heartbeatIntervalMs: 10_000,
    enrolledAt: NOW - 60_000,
    lastSeenAt: NOW - 1000,
    decommissionedAt: null,
    certNotAfter: NOW + 86_400_000,
    cpus: 2,
    latest,
  });
}

const NO_SYSTEMD =
  'systemd not available (this host was not booted with systemd) and no process named nginx runs';

test('a service whose state the host cannot tell is attention, with the reason, not critical', () => {
  assert.deepEqual(withServices([{ name: 'nginx', active: false, state: 'unknown', reason: NO_SYSTEMD }]), {
    status: 'attention',
    reasons: [`service nginx: state unknown, ${NO_SYSTEMD}`],
  });
  assert.deepEqual(withServices([{ name: 'nginx', active: false, state: 'unknown' }]), {
    status: 'attention',
    reasons: ['service nginx: state unknown, the agent could not tell'],
  });
});

test('services as older agents send them, `active` alone, read as before', () => {
  assert.deepEqual(withServices([{ name: 'sshd', active: true }]), { status: 'ok', reasons: [] });
  assert.deepEqual(withServices([{ name: 'db', active: false }]), {
    status: 'critical',
    reasons: ['service db is not running'],
  });
});

test('a stopped service still outranks one of unknown state', () => {
  assert.deepEqual(
    withServices([
      { name: 'nginx', active: false, state: 'unknown', reason: NO_SYSTEMD },
      { name: 'db', active: false, state: 'inactive' },
      { name: 'sshd', active: true, state: 'active' },
    ]),
    {
      status: 'critical',
      reasons: ['service db is not running', `service nginx: state unknown, ${NO_SYSTEMD}`],
    },
  );
});
