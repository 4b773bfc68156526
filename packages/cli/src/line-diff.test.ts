import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unifiedDiff } from './line-diff.js';

const lines = (n: number, edit: (i: number) => string = (i) => `line ${i}`) =>
  `${Array.from({ length: n }, (_, i) => edit(i + 1)).join('\n')}\n`;

test('the same text has no diff', () => {
  assert.equal(unifiedDiff(lines(5), lines(5), ['a', 'b']), '');
});

test('a changed line reads as - then +, with three lines of context and diff -u headers', () => {
  const after = lines(10, (i) => (i === 5 ? 'line five' : `line ${i}`));
  assert.equal(
    unifiedDiff(lines(10), after, ['in force', 'edited']),
    [
      '--- in force',
      '+++ edited',
      '@@ -2,7 +2,7 @@',
      ' line 2',
      ' line 3',
      ' line 4',
      '-line 5',
      '+line five',
      ' line 6',
      ' line 7',
      ' line 8',
      '',
    ].join('\n'),
  );
});

test('changes far apart are separate hunks; near ones share one; additions and removals count right', () => {
  const after = lines(30, (i) => (i === 3 || i === 25 ? `changed ${i}` : `line ${i}`)).replace(
    'line 27\n',
    'line 27\nadded\n',
  );
  const diff = unifiedDiff(lines(30), after, ['a', 'b']);
  const headers = diff.split('\n').filter((l) => l.startsWith('@@'));
  assert.deepEqual(headers, ['@@ -1,6 +1,6 @@', '@@ -22,9 +22,10 @@']);
  assert.equal(diff.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++')).length, 3);
});

test('from nothing, everything is added', () => {
  assert.equal(unifiedDiff('', 'a\nb\n', ['a', 'b']), '--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n');
});
