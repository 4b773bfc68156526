import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  test('reads the units a person writes', () => {
    const cases: Array<[string, number]> = [
      ['250ms', 250],
      ['90s', 90_000],
      ['10m', 600_000],
      ['1h', 3_600_000],
      ['1.5h', 5_400_000],
      ['7d', 604_800_000],
      [' 24h ', 86_400_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  test('refuses anything else instead of guessing', () => {
    for (const text of [
      '',
      '10',
      's',
      '0s',
      '-1s',
      '1e3s',
      '1 h',
      '1H',
      '1hour',
      '1h30m',
      '.5h',
      '5.h',
      'Infinityh',
      'NaNs',
    ]) {
      assert.equal(parseDuration(text), undefined, JSON.stringify(text));
    }
  });

  test('whole numbers of any unit round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.constantFrom(['ms', 1], ['s', 1000], ['m', 60_000], ['h', 3_600_000]),
        (n, [unit, scale]) => {
          assert.equal(parseDuration(`${n}${unit}`), n * (scale as number));
        },
      ),
    );
  });

  test('never returns something that is not a positive whole number of milliseconds', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('1', '0', '.', 'm', 's', 'h', 'd', '-', 'e', ' '), maxLength: 12 }),
        (text) => {
          const ms = parseDuration(text);
          if (ms !== undefined) assert.ok(Number.isSafeInteger(ms) && ms > 0, `${text} -> ${ms}`);
        },
      ),
    );
  });
});

describe('formatDuration', () => {
  test('reads the way a person speaks', () => {
    const cases: Array<[number, string]> = [
      [0, '0 s'],
      [47_000, '47 s'],
      [119_000, '119 s'],
      [120_000, '2 min'],
      [119 * 60_000, '119 min'],
      [2 * 3_600_000, '2 h'],
      [47 * 3_600_000, '47 h'],
      [48 * 3_600_000, '2 d'],
      [30 * 86_400_000, '30 d'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });
});
