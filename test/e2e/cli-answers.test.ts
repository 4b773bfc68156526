import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EVENT_KINDS, type TokenView } from '@muster/proto';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// Ordinary mistakes and missing answers at the CLI (issue 11): the ledger key that `verify --key`
// needs, a checkpoint that says it was checked, one sentence for a bad file or key, kind names
// checked, and token listings that say which host a token is for.
describe('ledger, events and token verbs answer a new operator plainly', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  after(() => sandbox.cleanup());
  before(async () => {
    server = await sandbox.startServer();
  });
  const cli = (...args: string[]) => sandbox.run([...args, ...server.adminFlags]);

  test('ledger key prints the key that ledger verify --key and checkpoint --key pin', async () => {
    const key = await cli('ledger', 'key');
    assert.equal(key.code, 0, describeResult(key));
    const vkey = key.stdout.trim();
    assert.match(vkey, /^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/);
    const json = await sandbox.json<{ origin: string; vkey: string }>([
      'ledger',
      'key',
      ...server.adminFlags,
    ]);
    assert.equal(json.vkey, vkey);
    assert.equal(typeof json.origin, 'string');

    const exported = join(sandbox.tempDir('export'), 'ledger.jsonl');
    assert.equal((await cli('token', 'create')).code, 0, 'something in the ledger');
    assert.equal((await cli('ledger', 'export', '--out', exported)).code, 0);
    const verify = await cli('ledger', 'verify', '--export', exported, '--key', vkey);
    assert.equal(verify.code, 0, describeResult(verify));
    assert.match(verify.stdout, /^verified: \d+ entries/);
    assert.doesNotMatch(verify.stderr, /no --key given/);
  });

  test('ledger checkpoint says its signature was checked, and with which key', async () => {
    const vkey = (await cli('ledger', 'key')).stdout.trim();
    const served = await cli('ledger', 'checkpoint');
    assert.equal(served.code, 0, describeResult(served));
    assert.match(served.stdout, /^\u2014 /m, 'the signed note itself is on stdout');
    assert.match(
      served.stderr,
      /^signature verified with the key the server gave \(.+\); pin it with --key/m,
    );
    const pinned = await cli('ledger', 'checkpoint', '--key', vkey);
    assert.equal(pinned.code, 0, describeResult(pinned));
    assert.match(pinned.stderr, /^signature verified with the pinned ledger key /m);
    const json = await sandbox.json<{ verified: boolean }>(['ledger', 'checkpoint', ...server.adminFlags]);
    assert.equal(json.verified, true);

    // A well-formed key that is not the server's: not verified, exit 1, and the note is not printed.
    const other = await sandbox.startServer();
    const otherKey = (await sandbox.run(['ledger', 'key', ...other.adminFlags])).stdout.trim();
    const foreign = await cli('ledger', 'checkpoint', '--key', otherKey);
    assert.equal(foreign.code, 1, describeResult(foreign));
    assert.match(foreign.stderr, /signs with a different ledger key .* than the one given with --key/);
    assert.equal(foreign.stdout, '');
  });

  test('ledger verify: a missing export is named in one sentence; a malformed --key is a usage error', async () => {
    const missing = await cli('ledger', 'verify', '--export', '/no/such/ledger.jsonl');
    assert.equal(missing.code, 1, describeResult(missing));
    assert.equal(
      missing.stderr,
      'muster ledger verify: cannot read the export /no/such/ledger.jsonl: no such file\n',
    );
    const dir = await cli('ledger', 'verify', '--export', sandbox.tempDir('not-a-file'));
    assert.equal(dir.code, 1, describeResult(dir));
    assert.match(dir.stderr, /cannot read the export .+: it is not a file/);
    const noValue = await sandbox.run(['ledger', 'verify', ...server.adminFlags, '--export']);
    assert.equal(noValue.code, 2, describeResult(noValue));

    for (const verb of [
      ['ledger', 'verify'],
      ['ledger', 'checkpoint'],
      ['ledger', 'proof', '0'],
    ]) {
      const garbage = await cli(...verb, '--key', 'garbage');
      assert.equal(garbage.code, 2, `${verb.join(' ')}: ${describeResult(garbage)}`);
      assert.match(
        garbage.stderr,
        /--key: "garbage" is not a ledger key \(.+\); muster ledger key prints the one to pin/,
      );
      assert.doesNotMatch(garbage.stderr, /different key/);
      assertNoStackTrace(garbage.stderr);
    }
  });

  test('events --kind and ledger ls --kind refuse names that are not kinds and list the ones that are', async () => {
    const typo = await cli('events', '--kind', 'nosuch');
    assert.equal(typo.code, 2, describeResult(typo));
    assert.match(
      typo.stderr,
      /--kind: "nosuch" is not a kind; the kinds are .*node\.enrolled.*token\.created/,
    );
    const mixed = await cli('events', '--kind', 'token.created,node.enroled');
    assert.equal(mixed.code, 2, describeResult(mixed));
    assert.match(mixed.stderr, /--kind: "node\.enroled" is not a kind/);
    const known = await cli('events', '--kind', 'token.created');
    assert.equal(known.code, 0, describeResult(known));
    assert.match(known.stdout, /token\.created/);
    const none = await cli('events', '--kind', 'ca.rotation_started');
    assert.equal(none.code, 0, 'a real kind with no events yet is not a mistake');
    assert.match(none.stdout, /^no events$/m);
    assert.ok(EVENT_KINDS.includes('incident'));

    // The ledger holds decisions only: its kinds are those, checked the same way.
    const ledgerTypo = await cli('ledger', 'ls', '--kind', 'node.enroled');
    assert.equal(ledgerTypo.code, 2, describeResult(ledgerTypo));
    assert.match(ledgerTypo.stderr, /--kind: "node\.enroled" is not a kind; the kinds are .*node\.enrolled/);
    assert.doesNotMatch(ledgerTypo.stderr, /incident/);
    const decisions = await cli('ledger', 'ls', '--kind', 'token.created');
    assert.equal(decisions.code, 0, describeResult(decisions));
    assert.match(decisions.stdout, /token\.created/);
  });

  test('token ls shows the name a token is bound to; token revoke takes a unique id prefix', async () => {
    const named = await sandbox.json<TokenView>(['token', 'create', '--name', 'web-9', ...server.adminFlags]);
    const ls = await cli('token', 'ls');
    assert.equal(ls.code, 0, describeResult(ls));
    assert.match(ls.stdout, /^ID\s+NAME\s+STATE\s+PROFILE/m);
    assert.match(ls.stdout, new RegExp(`^${named.id}\\s+web-9\\s+active\\s+default`, 'm'));
    assert.match(ls.stdout, /^\S+\s+-\s+active\s+default/m, 'a token bound to no name shows -');

    const revoke = await cli('token', 'revoke', named.id.slice(0, 8));
    assert.equal(revoke.code, 0, describeResult(revoke));
    assert.match(revoke.stdout, new RegExp(`Join token ${named.id} revoked`));
    const items = await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags]);
    assert.equal(items.find((t) => t.id === named.id)?.state, 'revoked');
    const unknown = await cli('token', 'revoke', 'zzzz0000');
    assert.equal(unknown.code, 1, describeResult(unknown));
    assert.match(unknown.stderr, /no token zzzz0000/);
  });
});
