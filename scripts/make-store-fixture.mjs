#!/usr/bin/env node
// Writes the upgrade fixtures: a store with real content, made by the code of THIS checkout,
// for the upgrade test (packages/server/src/store/upgrade.test.ts) to open with later code.
//
//   git worktree add /tmp/muster-0.1.0 v0.1.0 && cd /tmp/muster-0.1.0 && npm ci && npx tsc -b
//   MUSTER_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//     node scripts/make-store-fixture.mjs /path/to/repo/test/fixtures/store-0.1.0
//
// Run it from a checkout of the release whose store the fixture stands for (0.1.0 here), built,
// never from today's code: the point is a store as the old server left it. It writes, per
// dialect, the server's data dir (CA, ledger and fleet root keys, admin token) and the store:
// `sqlite/muster.db` (vacuumed), `postgres/dump.sql` (plain pg_dump, loaded by the test into a
// database of its own), and `manifest.json`, what the test expects to find again, with the
// enrolled agents' keys and certificates so it can heartbeat as them, and the last checkpoint
// the old server signed, which the upgraded log must extend. Certificates are issued for
// 3000 days so the fixture's agents stay valid for years (the default is 24h).
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatPublicKey, MUSTER_VERSION, signCommand, signPolicy } from '@muster/proto';

const root = new URL('..', import.meta.url).pathname;
const harness = await import(join(root, 'packages/server/dist/testing/harness.js'));
const out = resolve(process.argv[2] ?? join(root, 'test/fixtures/store-0.1.0'));
const pgUrl = process.env.MUSTER_TEST_PG_URL;
if (!pgUrl) {
  console.error('make-store-fixture: set MUSTER_TEST_PG_URL (the PostgreSQL fixture needs a server)');
  process.exit(2);
}
const settings = { 'cert-lifetime': '3000d', 'checkpoint-interval': '100ms' };

/** Fills a running server with a bit of everything an operator makes, through the real API. */
async function fill(t) {
  const call = async (method, path, body, want) => {
    const res = await t.admin(method, path, body);
    if (res.status !== want) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
    return res.json;
  };
  const fleet = await call('POST', '/v1/tokens', { uses: 10, profile: 'web' }, 201);
  const spare = await call('POST', '/v1/tokens', { name: 'spare', uses: 3, ttlSec: 30 * 86_400 }, 201);
  const revoked = await call('POST', '/v1/tokens', { name: 'revoked' }, 201);
  await call('DELETE', `/v1/tokens/${revoked.id}`, undefined, 204);

  const agents = [];
  for (const name of ['web-1', 'web-2', 'web-3']) {
    const agent = await harness.enrollAgent(t, { name, token: fleet.secret });
    for (let seq = 0; seq < 3; seq++) {
      const res = await agent.heartbeat(undefined, seq);
      if (res.status !== 202) throw new Error(`heartbeat ${name}: ${res.status} ${res.body}`);
    }
    agent.agent.destroy();
    agents.push({ nodeId: agent.nodeId, name, keyPem: agent.keyPem, certPem: agent.certPem });
  }
  await call('DELETE', `/v1/nodes/${agents[2].nodeId}`, undefined, 204);

  const note = await call('POST', '/v1/events', { kind: 'note', text: 'before the upgrade' }, 201);
  const tag = await call('POST', '/v1/events', { kind: 'tag', tag: 'release:0.1.0', severity: 'info' }, 201);

  const fleetRoot = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
  const alice = generateKeyPairSync('ed25519');
  const policy = {
    version: 1,
    operators: [{ name: 'alice', publicKey: formatPublicKey(alice.publicKey), profiles: ['web'] }],
    profiles: {
      web: {
        actions: {
          echo: {
            argv: ['echo', '{text}'],
            args: { text: { pattern: '[A-Za-z0-9 _.-]*' } },
            timeoutSec: 10,
            maxOutputBytes: 4096,
          },
        },
      },
    },
  };
  await call('POST', '/v1/policy', { policy, signature: signPolicy(policy, fleetRoot) }, 201);
  const now = Date.now();
  const command = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    operator: 'alice',
    target: { nodes: ['web-1', 'web-2'] },
    action: 'echo',
    args: { text: 'hello' },
  };
  await call('POST', '/v1/commands', { command, signature: signCommand(command, alice.privateKey) }, 202);

  // Wait until a signed checkpoint covers every entry, as a server left running would.
  const decisions = await call('GET', '/v1/ledger/decisions?limit=1', undefined, 200);
  const size = decisions.items[0].seq + 1;
  let checkpoint;
  for (let i = 0; ; i++) {
    const res = await t.admin('GET', '/v1/ledger/checkpoint');
    checkpoint = res.body;
    if (checkpoint.split('\n')[1] === String(size)) break;
    if (i > 100) throw new Error(`no checkpoint at size ${size}: ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    madeBy: MUSTER_VERSION,
    tokens: { fleet: fleet.id, spare: spare.id, revoked: revoked.id },
    agents,
    decommissioned: agents[2].name,
    events: [note.id, tag.id],
    commands: [command.id],
    ledgerSize: size,
    checkpoint,
    vkey: (await call('GET', '/v1/ledger/key', undefined, 200)).vkey,
  };
}

/** The data dir's own files (keys, certificates, admin token), not the store. */
function copyDataDir(from, to) {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (!name.startsWith('muster.db')) copyFileSync(join(from, name), join(to, name));
  }
}

async function sqliteFixture() {
  const dataDir = mkdtempSync(join(tmpdir(), 'muster-fixture-'));
  const t = await harness.startTestServer('sqlite', { dataDir, settings });
  const manifest = await fill(t);
  await t.close();
  // As the store loads it: better-sqlite3 13 on Node 22 and later, 12 (an alias) on Node 20.
  const sqlite =
    Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20';
  const Database = createRequire(join(root, 'packages/server/package.json'))(sqlite);
  const db = new Database(join(dataDir, 'muster.db'));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('VACUUM');
  db.close();
  const dir = join(out, 'sqlite');
  copyDataDir(dataDir, dir);
  copyFileSync(join(dataDir, 'muster.db'), join(dir, 'muster.db'));
  rmSync(dataDir, { recursive: true, force: true });
  return manifest;
}

async function postgresFixture() {
  const dataDir = mkdtempSync(join(tmpdir(), 'muster-fixture-'));
  const pgDb = await harness.createPgDatabase();
  try {
    const t = await harness.startTestServer('postgres', { dataDir, db: pgDb.url, settings });
    const manifest = await fill(t);
    await t.close();
    const dir = join(out, 'postgres');
    copyDataDir(dataDir, dir);
    // Plain SQL without owners or grants, so it loads into any fresh database as any role.
    const dump = execFileSync('pg_dump', ['--no-owner', '--no-privileges', '--dbname', pgDb.url], {
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(join(dir, 'dump.sql'), dump);
    return manifest;
  } finally {
    await pgDb.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const manifest = { sqlite: await sqliteFixture(), postgres: await postgresFixture() };
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${out} (made by muster ${MUSTER_VERSION})`);
