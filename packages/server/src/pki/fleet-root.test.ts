import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fleetRootPaths, loadFleetRoot, makeFleetRoot } from './fleet-root.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-fleet-root-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('a root.pub that cannot be read stops the start and leaves the fleet root key as it was', async () => {
  const paths = fleetRootPaths(dir);
  const { keyPem } = makeFleetRoot();
  await writeFile(paths.key, keyPem, { mode: 0o600 });
  await mkdir(paths.pub); // there, but not a readable file (EISDIR; EACCES for a non-root server)
  await assert.rejects(loadFleetRoot(dir), { message: `cannot read ${paths.pub}: EISDIR` });
  assert.equal(await readFile(paths.key, 'utf8'), keyPem, 'the private key was not replaced');
});

test('a data dir with neither file gets a new fleet root, as on a first start', async () => {
  const fresh = await mkdtemp(join(dir, 'fresh-'));
  const root = await loadFleetRoot(fresh);
  assert.deepEqual(root.created, [fleetRootPaths(fresh).pub, fleetRootPaths(fresh).key]);
  assert.match(await readFile(fleetRootPaths(fresh).pub, 'utf8'), /^ed25519:/);
});
