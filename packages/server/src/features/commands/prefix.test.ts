import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Command, formatPublicKey, type Policy, signCommand, signPolicy } from '@muster/proto';
import {
  type Dialect,
  dialects,
  enrollAgent,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';

const operator = generateKeyPairSync('ed25519');

function signed(t: TestServer, id: string) {
  const now = t.clock.now();
  const command: Command = {
    v: 1,
    id,
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    operator: 'ops',
    target: { nodes: ['prefix-web'] },
    action: 'noop',
    args: {},
  };
  return { command, signature: signCommand(command, operator.privateKey) };
}

for (const dialect of dialects() as Dialect[]) {
  // GET /v1/commands/:id takes a unique prefix of an id, as git does, so an operator can type
  // the first characters `muster commands ls` shows.
  describe(`a command found by a prefix of its id (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
      const policy: Policy = {
        version: 1,
        operators: [{ name: 'ops', publicKey: formatPublicKey(operator.publicKey), profiles: ['*'] }],
        profiles: { default: { actions: { noop: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 } } } },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      assert.equal(
        (await t.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) })).status,
        201,
      );
      await enrollAgent(t, { name: 'prefix-web' });
      for (const id of ['abcd1234-one', 'abcd5678-two', 'ABCDef00-upper', 'ab_d0000-under'])
        assert.equal((await t.admin('POST', '/v1/commands', signed(t, id))).status, 202, id);
    });
    after(() => t?.close());

    test('a unique prefix finds its command; the whole id still does', async () => {
      for (const [asked, found] of [
        ['abcd1', 'abcd1234-one'],
        ['abcd5678', 'abcd5678-two'],
        ['ABCD', 'ABCDef00-upper'],
        ['ab_d', 'ab_d0000-under'],
        ['abcd1234-one', 'abcd1234-one'],
      ]) {
        const res = await t.admin('GET', `/v1/commands/${asked}`);
        assert.equal(res.status, 200, `${asked}: ${res.body}`);
        assert.equal(res.json.id, found, asked);
        assert.equal(res.json.targets[0].name, 'prefix-web');
      }
    });

    test('a prefix of several ids is a conflict naming them; one of none, or too short, is not found', async () => {
      const ambiguous = await t.admin('GET', '/v1/commands/abcd');
      assert.equal(ambiguous.status, 409, ambiguous.body);
      assert.equal(ambiguous.json.code, 'ambiguous_id');
      assert.match(
        ambiguous.json.detail,
        /"abcd" is the start of several command ids: abcd1234-one, abcd5678-two;/,
      );
      // `_` and `%` are not wildcards here: `a%` and `ab%d` match nothing.
      for (const asked of ['zzzz', 'ab%d', 'a_cd', 'abc']) {
        const res = await t.admin('GET', `/v1/commands/${encodeURIComponent(asked)}`);
        assert.equal(res.status, 404, `${asked}: ${res.body}`);
        assert.equal(res.json.detail, `no command ${asked}`);
      }
    });
  });
}
