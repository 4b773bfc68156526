import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, describe, test } from 'node:test';
import type { NodeView, TokenCreated } from '@muster/proto';
import { assertHealthy } from '../support/fleet.js';
import { startAgent, startInProcessServer } from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { dialects, Sandbox } from '../support/sandbox.js';

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();

for (const dialect of dialects()) {
  describe(`short-lived certificates (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('agents on 90 s certificates and their own renewal schedule stay ok through a renewal', async () => {
      const t = await startInProcessServer(sandbox, dialect, {
        'cert-lifetime': '90s',
        'heartbeat-interval': '1s',
      });
      const created = await t.admin('POST', '/v1/tokens', { uses: 2 });
      assert.equal(created.status, 201);
      const secret = (created.json as TokenCreated).secret;
      const names = ['short-1', 'short-2'];
      // Agents renew as they do by default: after about two thirds of the lifetime.
      const runs = names.map((name) =>
        startAgent(sandbox, {
          server: new URL(t.server.agentUrl),
          caPin: t.server.identity.ca.pin,
          rootPin: t.server.rootPin,
          token: secret,
          name,
        }),
      );
      const seen: NodeView[] = [];
      try {
        const show = async (name: string) => {
          const res = await t.admin('GET', `/v1/nodes/${name}`);
          return res.status === 200 ? (res.json as NodeView) : undefined;
        };
        // Every status shown from the first heartbeat until each node reports on its renewed
        // certificate: before, a 90 s certificate was `attention` all its life.
        await waitFor(
          'each node to report on a renewed certificate',
          async () => {
            let done = true;
            for (const [i, name] of names.entries()) {
              const view = await show(name);
              if (view?.lastSeenAt) seen.push(view);
              const renewed = runs[i]!.renewed[0];
              if (!view || !renewed || view.cert.serial !== serialOf(renewed.certPem)) done = false;
            }
            return done ? true : undefined;
          },
          { timeoutMs: 150_000, intervalMs: 1000 },
        );
        assert.ok(seen.length > 2 * 30, `statuses were looked at through the lifetime (${seen.length})`);
        for (const view of seen) assertHealthy(view);
        // Nor was a heartbeat refused: an agent on its interval is never throttled.
        for (const run of runs)
          assert.deepEqual(
            run.logs.filter((l) => l.level === 'warn' || l.level === 'error'),
            [],
          );
        for (const view of seen)
          assert.ok(
            !view.reasons.some((r) => r.includes('certificate')),
            `${view.name} at ${view.lastSeenAt}: ${view.reasons.join('; ')}`,
          );
      } finally {
        await Promise.all(runs.map((r) => r.stop()));
        await t.close();
      }
    });
  });
}
