import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renewalTime, ServerTime } from './renewal.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

describe('renewalTime', () => {
  test('two thirds into a 24 h lifetime, give or take 5 % of it', () => {
    const validity = { issuedAt: T0, notAfter: T0 + 24 * 60 * MIN };
    assert.equal(
      renewalTime(validity, 0.67, () => 0.5),
      T0 + Math.round(0.67 * 24 * 60 * MIN),
    );
    assert.equal(
      renewalTime(validity, 0.67, () => 0),
      T0 + Math.round(0.62 * 24 * 60 * MIN),
    );
    assert.equal(
      renewalTime(validity, 0.67, () => 1),
      T0 + Math.round(0.72 * 24 * 60 * MIN),
    );
  });

  test('a 2 min lifetime renews after about 80 s, counted from issuance, not from the back-dated notBefore', () => {
    const validity = { issuedAt: T0, notAfter: T0 + 2 * MIN };
    const at = renewalTime(validity, 0.67, () => 0.5);
    assert.equal(at - T0, Math.round(0.67 * 2 * MIN));
    for (const r of [0, 0.25, 0.75, 0.999]) {
      const t = renewalTime(validity, 0.67, () => r);
      assert.ok(t > T0 && t < validity.notAfter);
    }
  });

  test('fractions close to 0 or 1 keep the jitter inside the lifetime', () => {
    const validity = { issuedAt: T0, notAfter: T0 + 10 * MIN };
    for (const fraction of [0.001, 0.999]) {
      for (const r of [0, 1]) {
        const t = renewalTime(validity, fraction, () => r);
        assert.ok(t >= T0 && t <= validity.notAfter, `${fraction} ${r}`);
      }
    }
  });
});

describe('ServerTime', () => {
  test('corrects a clock that is an hour ahead or behind from one answer', () => {
    for (const skew of [60 * MIN, -60 * MIN, 5 * MIN, -5 * MIN]) {
      let local = T0 + skew;
      const time = new ServerTime(() => local);
      assert.equal(time.now(), T0 + skew, 'uncorrected until an answer came');
      // Sent at local T0+skew, answered 100 ms later; the server stamped the midpoint.
      time.observe(new Date(T0 + 50).toISOString(), local, local + 100);
      local += 100;
      assert.equal(time.now(), T0 + 100);
      assert.equal(time.offset, -skew);
    }
  });

  test('ignores an answer without a readable time', () => {
    const time = new ServerTime(() => T0);
    time.observe('not a time', T0, T0);
    assert.equal(time.now(), T0);
    assert.equal(time.observed, false);
  });
});
