import assert from 'node:assert/strict';
import type { HttpsResult, Json, TestServer } from './harness.js';

function parseJson(body: string): Json {
  try {
    return body ? JSON.parse(body) : undefined;
  } catch {
    return undefined;
  }
}

/** Calls the admin plane with a bearer secret, as a script holding an API token would. */
export async function as(t: TestServer, secret: string, method: string, url: string, body?: unknown) {
  const res = await t.server.app.admin.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${secret}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  return {
    status: res.statusCode,
    json: parseJson(res.body),
    body: res.body,
    headers: res.headers as HttpsResult['headers'],
  };
}

/** Adds a user and makes an API token for them (as the bootstrap admin); returns the secret. */
export async function userToken(
  t: TestServer,
  name: string,
  role: string,
  token: Record<string, unknown> = {},
) {
  const added = await t.admin('POST', '/v1/users', { name, role });
  assert.equal(added.status, 201, added.body);
  const made = await t.admin('POST', '/v1/apitokens', { user: name, ...token });
  assert.equal(made.status, 201, made.body);
  return made.json as { id: string; secret: string };
}
