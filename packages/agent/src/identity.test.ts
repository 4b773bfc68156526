import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportPrivateKeyPem, generateKeyPair, issueCertificate, nameDer, OIDS } from '@muster/host';
import {
  identityPaths,
  loadIdentity,
  type StoredIdentity,
  saveIdentity,
  saveRenewedIdentity,
} from './identity.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function identity(serialHex: string): Promise<StoredIdentity> {
  const keys = await generateKeyPair();
  const name = nameDer([[OIDS.commonName, 'web-1']]);
  const now = Date.now();
  const certPem = issueCertificate(
    {
      serialHex,
      issuer: name,
      subject: name,
      notBefore: now - 300_000,
      notAfter: now + 3_600_000,
      spki: keys.publicKey.export({ type: 'spki', format: 'der' }),
      ca: false,
    },
    keys.privateKey,
  );
  return {
    nodeId: 'n-1',
    name: 'web-1',
    server: 'https://127.0.0.1:8443',
    caPin: `sha256:${'0'.repeat(64)}`,
    keyPem: exportPrivateKeyPem(keys.privateKey),
    certPem,
    caPem: certPem,
    notAfter: new Date(Math.floor((now + 3_600_000) / 1000) * 1000).toISOString(),
  };
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-agent-identity-'));
  dirs.push(dir);
  return join(dir, 'agent');
}

test('a renewal is saved whole, in a data dir that does not exist yet, and leaves no staged files', async () => {
  const dir = await dataDir();
  const renewed = await identity('41');
  await saveRenewedIdentity(dir, renewed);
  assert.deepEqual(await loadIdentity(dir), renewed);
  assert.equal(existsSync(identityPaths(dir).nextKey), false);
  assert.equal(existsSync(identityPaths(dir).nextCert), false);
});

test('a crash after the new key but before the new certificate is finished from the staged pair', async () => {
  const dir = await dataDir();
  const old = await identity('42');
  const renewed = await identity('43');
  await saveIdentity(dir, old);
  const paths = identityPaths(dir);
  // What saveRenewedIdentity leaves when the process dies right after writing node.key.
  await writeFile(paths.nextKey, renewed.keyPem, { mode: 0o600 });
  await writeFile(paths.nextCert, renewed.certPem);
  await writeFile(paths.key, renewed.keyPem, { mode: 0o600 });
  const loaded = await loadIdentity(dir);
  assert.equal(loaded?.keyPem, renewed.keyPem);
  assert.equal(loaded?.certPem, renewed.certPem);
  assert.equal(existsSync(paths.nextKey), false);
  assert.deepEqual(await loadIdentity(dir), loaded);
});

test('a key that matches no certificate is refused with what to do', async () => {
  const dir = await dataDir();
  await saveIdentity(dir, await identity('44'));
  await writeFile(identityPaths(dir).key, (await identity('45')).keyPem, { mode: 0o600 });
  await assert.rejects(loadIdentity(dir), /node\.key does not match .*node\.pem; enroll this host again/);
});
