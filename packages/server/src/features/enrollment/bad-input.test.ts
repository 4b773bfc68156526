import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  dialects,
  enrollAgent,
  postEnroll,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { testCsr, testKeys } from '../../testing/pki.js';
import { assertProblem } from '../../testing/problems.js';
import { x509 } from '../../testing/x509.js';

/** A real CSR whose signature no longer verifies: the last byte of the signature is flipped. */
async function csrWithBrokenSignature(): Promise<string> {
  const der = Buffer.from(x509.PemConverter.decode(await testCsr())[0]!);
  der[der.length - 1]! ^= 0x01;
  const broken = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
  assert.equal(await new x509.Pkcs10CertificateRequest(broken).verify(), false);
  return broken;
}

for (const dialect of dialects()) {
  describe(`enrollment refuses bad input (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    /** A fresh one-use token; `usesLeft()` shows whether a refused enrollment consumed it. */
    async function oneUseToken(): Promise<{ token: string; usesLeft(): Promise<number> }> {
      const created = await t.admin('POST', '/v1/tokens', {});
      assert.equal(created.status, 201);
      return {
        token: created.json.secret,
        async usesLeft() {
          const list = await t.admin('GET', '/v1/tokens');
          return list.json.items.find((item: { id: string }) => item.id === created.json.id).usesLeft;
        },
      };
    }

    test('a CSR whose signature does not verify is a 400 and leaves the token unused', async () => {
      const { token, usesLeft } = await oneUseToken();
      const res = await postEnroll(t, { token, csr: await csrWithBrokenSignature() });
      const problem = assertProblem(res, 400, 'bad_csr');
      assert.match(problem.detail, /signature/);
      assert.equal(await usesLeft(), 1);
      await enrollAgent(t, { token }).then((agent) => agent.agent.destroy());
    });

    test('garbage instead of a PEM CSR is a 400 and leaves the token unused', async () => {
      const { token, usesLeft } = await oneUseToken();
      const garbage = [
        'hello',
        '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all!!\n-----END CERTIFICATE REQUEST-----\n',
        '-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n-----END CERTIFICATE REQUEST-----\n',
        (await testCsr()).replace('CERTIFICATE REQUEST', 'CERTIFICATE'),
      ];
      for (const csr of garbage) {
        assertProblem(await postEnroll(t, { token, csr }), 400, 'bad_csr');
      }
      assert.equal(await usesLeft(), 1);
      await enrollAgent(t, { token }).then((agent) => agent.agent.destroy());
    });

    test('a CSR for a key other than ECDSA P-256 is a 400', async () => {
      const { token, usesLeft } = await oneUseToken();
      const csr = await testCsr({ keys: await testKeys('P-384'), hash: 'SHA-384' });
      const problem = assertProblem(await postEnroll(t, { token, csr }), 400, 'bad_csr');
      assert.match(problem.detail, /P-256/);
      assert.equal(await usesLeft(), 1);
    });

    test('names that are not DNS labels are a 422 and leave the token unused', async () => {
      const { token, usesLeft } = await oneUseToken();
      const bad = ['../x', 'A', 'a_b', 'a'.repeat(64), '', 'a\u0000b', 'a\u202eb', '-a', 'a-', 'a.b', 'é'];
      for (const name of bad) {
        const problem = assertProblem(await postEnroll(t, { token, name }), 422, 'bad_name');
        assert.match(problem.detail, /node name must be/);
      }
      assert.equal(await usesLeft(), 1);
      const longest = 'a'.repeat(63);
      const agent = await enrollAgent(t, { token, name: longest });
      assert.equal(agent.name, longest);
      agent.agent.destroy();
    });

    test('a name held by an active node is a 409; after decommissioning it, the name enrolls again', async () => {
      const first = await enrollAgent(t, { name: 'db-1' });
      first.agent.destroy();
      const { token, usesLeft } = await oneUseToken();
      const problem = assertProblem(await postEnroll(t, { token, name: 'db-1' }), 409, 'name_taken');
      assert.match(problem.detail, new RegExp(`db-1 is held by node ${first.nodeId}`));
      assert.equal(await usesLeft(), 1);

      assert.equal((await t.admin('DELETE', `/v1/nodes/${first.nodeId}`)).status, 204);
      const second = await enrollAgent(t, { token, name: 'db-1' });
      assert.notEqual(second.nodeId, first.nodeId);
      assert.equal((await second.heartbeat()).status, 202);
      const shown = await t.admin('GET', '/v1/nodes/db-1');
      assert.equal(shown.json.id, second.nodeId);
      assert.equal(shown.json.status, 'ok');
      second.agent.destroy();
    });

    test('a request that fails schema validation is a 400 problem', async () => {
      const { token, usesLeft } = await oneUseToken();
      assertProblem(await postEnroll(t, { token, facts: { hostname: 'x' } }), 400, 'invalid_request');
      assertProblem(await postEnroll(t, { token, extra: true }), 400, 'invalid_request');
      assert.equal(await usesLeft(), 1);
    });
  });
}
