import assert from 'node:assert/strict';
import type { Agent as HttpsAgent } from 'node:https';
import { describe, test } from 'node:test';
import { createCsrPem } from '@muster/host';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  type HttpsResult,
  httpsJson,
  postEnroll,
  startReplicas,
  type TestServer,
} from '../testing/harness.js';
import { as } from '../testing/people.js';
import { assertProblem } from '../testing/problems.js';

/**
 * Rate limits hold for the fleet: a budget spent half on one replica and half on the other is
 * spent. The replicas share one clock that stands still, so no bucket refills mid-test.
 */
for (const dialect of dialects().filter((d) => d === 'postgres')) {
  describe(`rate limits across two replicas (${dialect})`, () => {
    test('refused credentials spread over both replicas: past the budget the next is 429 on either', async () => {
      const { a, b, close } = await startReplicas(dialect, { 'auth-failure-rate': '4' });
      try {
        const wrong = (t: TestServer, i: number) => as(t, `mat_wrong-${i}`, 'GET', '/v1/nodes');
        for (const [i, t] of [a, b, a, b].entries()) assertProblem(await wrong(t, i), 401);
        const limited = await wrong(a, 4);
        assertProblem(limited, 429, 'rate_limited');
        assert.ok(Number(limited.headers['retry-after']) >= 1);
        assertProblem(await wrong(b, 5), 429, 'rate_limited');
        assert.equal((await b.admin('GET', '/v1/nodes')).status, 200, 'a valid token is still accepted');
      } finally {
        await close();
      }
    });

    test('enrollments spread over both replicas: the burst is the fleet’s, the next is 429', async () => {
      // One a second in bursts of five, for the fleet.
      const { a, b, close } = await startReplicas(dialect, { 'enroll-rate': '1' });
      try {
        for (const t of [a, b, a, b, a]) assertProblem(await postEnroll(t, { token: 'mt_wrong' }), 401);
        assertProblem(await postEnroll(b, { token: 'mt_wrong' }), 429, 'rate_limited');
        assertProblem(await postEnroll(a, { token: 'mt_wrong' }), 429, 'rate_limited');
      } finally {
        await close();
      }
    });

    test('renewals of one node spread over both replicas: past its rate the next is 429, nothing issued', async () => {
      const { a, b, close } = await startReplicas(dialect, { 'renew-rate': '4' });
      const renew = (t: TestServer, agent: HttpsAgent, csr: string): Promise<HttpsResult> =>
        httpsJson(`${t.server.agentUrl}/v1/agent/renew`, { body: { csr }, agent });
      try {
        const node = await enrollAgent(a);
        try {
          const csr = await createCsrPem(node.keys, node.name);
          for (const t of [a, b, a, b]) assert.equal((await renew(t, node.agent, csr)).status, 200);
          assertProblem(await renew(b, node.agent, csr), 429, 'rate_limited');
          assertProblem(await renew(a, node.agent, csr), 429, 'rate_limited');
          const decisions = await decisionsAbout(b, `node:${node.nodeId}`);
          assert.equal(decisions.filter((d) => d.kind === 'node.renewed').length, 4);
        } finally {
          node.agent.destroy();
        }
      } finally {
        await close();
      }
    });
  });
}
