import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';

// CONTRACT section 8: `/metrics` needs a credential of any role. A scraper runs with the least a
// token can hold, even a custom role that reads nothing but one label's nodes.
describe('/metrics takes a credential of any role', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite');
    const role = await t.admin('POST', '/v1/roles', {
      name: 'one-team',
      allow: [{ verbs: ['read'], resources: ['events'], nodes: { labels: { team: 'web' } } }],
    });
    assert.equal(role.status, 200, role.body);
  });
  after(() => t?.close());

  test('a viewer and a narrow custom role scrape it; a revoked token and none are 401', async () => {
    const viewer = await userToken(t, 'scraper', 'viewer');
    const narrow = await userToken(t, 'web-team', 'one-team');
    for (const secret of [viewer.secret, narrow.secret]) {
      const res = await as(t, secret, 'GET', '/metrics');
      assert.equal(res.status, 200, res.body);
      assert.match(res.body, /^# HELP /m);
    }
    assert.equal((await t.admin('DELETE', `/v1/apitokens/${viewer.id}`)).status, 204);
    assert.equal((await as(t, viewer.secret, 'GET', '/metrics')).status, 401);
    const anonymous = await t.server.app.admin.inject({ method: 'GET', url: '/metrics' });
    assert.equal(anonymous.statusCode, 401);
  });
});
