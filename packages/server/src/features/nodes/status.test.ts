import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Heartbeat } from '@muster/proto';
import { assessNode, type StatusInput } from './status.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const GiB = 2 ** 30;

function heartbeat(overrides: Partial<Heartbeat> = {}): Heartbeat {
  return {
    seq: 1,
    sentAt: new Date(NOW).toISOString(),
    uptimeSec: 100,
    load: [0.5, 0.5, 0.5],
    cpuPct: 10,
    memory: { totalBytes: 8 * GiB, availableBytes: 6 * GiB },
    disks: [{ mount: '/', totalBytes: 100 * GiB, freeBytes: 60 * GiB }],
    services: [{ name: 'sshd', active: true }],
    checks: [],
    ...overrides,
  };
}

function input(overrides: Partial<StatusInput> = {}): StatusInput {
  return {
    now: NOW,
    heartbeatIntervalMs: 10_000,
    enrolledAt: NOW - 60_000,
    lastSeenAt: NOW - 1000,
    decommissionedAt: null,
    certNotAfter: NOW + 86_400_000,
    cpus: 2,
    latest: heartbeat(),
    ...overrides,
  };
}

describe('assessNode', () => {
  test('a failing renewal is said with the certificate expiry, critical once renewal is overdue', () => {
    const failing = heartbeat({
      checks: [{ name: 'certificate renewal', ok: false, detail: 'server answered 503' }],
    });
    const day = { certIssuedAt: NOW - 14 * 3_600_000, certNotAfter: NOW + 10 * 3_600_000 };
    assert.deepEqual(assessNode(input({ latest: failing, ...day })), {
      status: 'attention',
      reasons: ['certificate expires in 10 h and renewal is failing (server answered 503)'],
    });
    const late = { certIssuedAt: NOW - 23.5 * 3_600_000, certNotAfter: NOW + 30 * 60_000 };
    assert.deepEqual(assessNode(input({ latest: failing, ...late })), {
      status: 'critical',
      reasons: ['certificate expires in 30 min and renewal is failing (server answered 503)'],
    });
    const passing = heartbeat({ checks: [{ name: 'certificate renewal', ok: true }] });
    assert.deepEqual(assessNode(input({ latest: passing })), { status: 'ok', reasons: [] });
  });

  test('a short-lived certificate on its renewal schedule is ok, whatever little time it has left', () => {
    // 90 s certificates: the agent renews after about 60 s, so 82 s or 30 s left is on schedule.
    for (const left of [82_000, 30_000, 23_000]) {
      const cert = { certIssuedAt: NOW - (90_000 - left), certNotAfter: NOW + left };
      assert.deepEqual(assessNode(input(cert)), { status: 'ok', reasons: [] }, `${left} ms left`);
    }
    // A one-hour certificate (SPIRE's default) with 50 min left is ok too.
    const hour = { certIssuedAt: NOW - 10 * 60_000, certNotAfter: NOW + 50 * 60_000 };
    assert.deepEqual(assessNode(input(hour)), { status: 'ok', reasons: [] });
  });

  test('a certificate whose renewal is overdue is attention; a renewal issued but not used yet is not', () => {
    const overdue = { certIssuedAt: NOW - 70_000, certNotAfter: NOW + 20_000 };
    assert.deepEqual(assessNode(input(overdue)), {
      status: 'attention',
      reasons: ['certificate expires in 20 s and has not been renewed (overdue for a 90 s certificate)'],
    });
    assert.deepEqual(assessNode(input({ ...overdue, renewedNotAfter: NOW + 80_000 })), {
      status: 'ok',
      reasons: [],
    });
  });

  test('an offline node whose certificate expired says it must enroll again', () => {
    assert.deepEqual(
      assessNode(input({ lastSeenAt: NOW - 2 * 3_600_000, certNotAfter: NOW - 3_600_000 })).reasons,
      [
        'no heartbeat for 2 h (expected every 10 s)',
        'certificate expired 60 min ago; the node must enroll again with a new join token',
      ],
    );
  });

  test('a clock off by more than the allowance, either way, is a clock skew reason', () => {
    const seen = NOW - 1000;
    const at = (offsetMs: number) =>
      assessNode(
        input({
          lastSeenAt: seen,
          latest: heartbeat({ sentAt: new Date(seen + offsetMs).toISOString() }),
          clockSkewAllowanceMs: 5 * 60_000,
        }),
      );
    assert.deepEqual(at(5 * 60_000), { status: 'ok', reasons: [] });
    assert.deepEqual(at(-5 * 60_000), { status: 'ok', reasons: [] });
    assert.deepEqual(at(6 * 60_000).reasons, [
      "clock skew: the node's clock is 6 min ahead of the server's (allowed 5 min)",
    ]);
    assert.deepEqual(at(-3_600_000), {
      status: 'attention',
      reasons: ["clock skew: the node's clock is 60 min behind the server's (allowed 5 min)"],
    });
    assert.equal(at(3_600_000).status, 'attention');
    // Without an allowance (the caller does not judge clocks) nothing is said.
    assert.deepEqual(
      assessNode(input({ latest: heartbeat({ sentAt: new Date(NOW - 3_600_000).toISOString() }) })),
      {
        status: 'ok',
        reasons: [],
      },
    );
  });

  test('a node reporting normally is ok with no reasons', () => {
    assert.deepEqual(assessNode(input()), { status: 'ok', reasons: [] });
  });

  test('goes offline after three missed intervals, not before', () => {
    assert.equal(assessNode(input({ lastSeenAt: NOW - 30_000 })).status, 'ok');
    assert.deepEqual(assessNode(input({ lastSeenAt: NOW - 30_001 })), {
      status: 'offline',
      reasons: ['no heartbeat for 30 s (expected every 10 s)'],
    });
    assert.deepEqual(assessNode(input({ lastSeenAt: NOW - 47_000 })).reasons, [
      'no heartbeat for 47 s (expected every 10 s)',
    ]);
  });

  test('a node that never reported counts from its enrollment', () => {
    assert.deepEqual(assessNode(input({ lastSeenAt: null, latest: null, enrolledAt: NOW - 5000 })), {
      status: 'attention',
      reasons: ['waiting for the first heartbeat'],
    });
    assert.deepEqual(assessNode(input({ lastSeenAt: null, latest: null, enrolledAt: NOW - 3_600_000 })), {
      status: 'offline',
      reasons: ['no heartbeat since enrollment for 60 min (expected every 10 s)'],
    });
  });

  test('decommissioned wins over everything', () => {
    assert.deepEqual(assessNode(input({ decommissionedAt: NOW - 120_000, lastSeenAt: NOW - 999_999 })), {
      status: 'decommissioned',
      reasons: ['decommissioned 2 min ago'],
    });
  });

  test('disks: 90% full needs attention, 97% is critical', () => {
    const disk = (freeGiB: number) =>
      assessNode(
        input({
          latest: heartbeat({ disks: [{ mount: '/var', totalBytes: 100 * GiB, freeBytes: freeGiB * GiB }] }),
        }),
      );
    assert.equal(disk(11).status, 'ok');
    assert.deepEqual(disk(7), { status: 'attention', reasons: ['disk /var 93% full'] });
    assert.deepEqual(disk(2), { status: 'critical', reasons: ['disk /var 98% full'] });
    const empty = assessNode(
      input({ latest: heartbeat({ disks: [{ mount: '/x', totalBytes: 0, freeBytes: 0 }] }) }),
    );
    assert.equal(empty.status, 'ok', 'a zero-sized mount is not a full disk');
  });

  test('memory, load, services and checks each give a reason a person can act on', () => {
    const bad = assessNode(
      input({
        latest: heartbeat({
          memory: { totalBytes: 100, availableBytes: 5 },
          load: [9, 1, 1],
          services: [{ name: 'nginx', active: false }],
          checks: [{ name: 'http', ok: false, detail: 'status 502' }],
        }),
      }),
    );
    assert.equal(bad.status, 'critical');
    assert.deepEqual(
      new Set(bad.reasons),
      new Set([
        'memory 95% used',
        'load 9.0 on 2 CPUs',
        'service nginx is not running',
        'check http failing: status 502',
      ]),
    );
    assert.deepEqual(bad.reasons.slice(-2).sort(), ['check http failing: status 502', 'memory 95% used']);
  });

  test('reasons come most severe first', () => {
    const mixed = assessNode(
      input({
        latest: heartbeat({
          disks: [{ mount: '/data', totalBytes: 100, freeBytes: 5 }],
          services: [{ name: 'db', active: false }],
        }),
      }),
    );
    assert.deepEqual(mixed, {
      status: 'critical',
      reasons: ['service db is not running', 'disk /data 95% full'],
    });
  });

  test('a certificate near or past its end is reported', () => {
    assert.deepEqual(
      assessNode(input({ certIssuedAt: NOW - 23.5 * 3_600_000, certNotAfter: NOW + 30 * 60_000 })),
      {
        status: 'attention',
        reasons: ['certificate expires in 30 min and has not been renewed (overdue for a 24 h certificate)'],
      },
    );
    assert.deepEqual(assessNode(input({ certNotAfter: NOW - 5000 })), {
      status: 'critical',
      reasons: ['certificate expired 5 s ago'],
    });
  });

  test('load is judged against the CPU count, and zero CPUs counts as one', () => {
    assert.equal(assessNode(input({ cpus: 8, latest: heartbeat({ load: [9, 0, 0] }) })).status, 'ok');
    assert.deepEqual(assessNode(input({ cpus: 0, latest: heartbeat({ load: [3, 0, 0] }) })).reasons, [
      'load 3.0 on 1 CPUs',
    ]);
  });
});
