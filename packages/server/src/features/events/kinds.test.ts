import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EVENT_KINDS } from '@muster/proto';

/** The server's compiled code, from dist/features/events where this test runs. */
const SERVER_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.js') && !entry.name.endsWith('.test.js') ? [path] : [];
  });
}

// `muster events --kind` refuses kind names outside EVENT_KINDS, so a kind the server starts
// recording must be added there, and a kind it no longer records taken out.
test('EVENT_KINDS names exactly the kinds the server records', () => {
  const recorded = new Set<string>();
  for (const file of sourceFiles(SERVER_ROOT)) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\bkind: '([a-z_]+\.[a-z_.]+)'/g))
      recorded.add(match[1]!);
  }
  assert.ok(recorded.size > 10, `found only ${[...recorded].join(', ')}: the scan is not reading the server`);
  const listed = new Set<string>(EVENT_KINDS.filter((k) => k.includes('.')));
  assert.deepEqual(
    [...recorded].filter((k) => !listed.has(k)).sort(),
    [],
    'recorded by the server but missing from EVENT_KINDS',
  );
  assert.deepEqual(
    [...listed].filter((k) => !recorded.has(k)).sort(),
    [],
    'in EVENT_KINDS but recorded nowhere',
  );
});
