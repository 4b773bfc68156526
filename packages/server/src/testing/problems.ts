import assert from 'node:assert/strict';
import { PROBLEM_CONTENT_TYPE } from '@muster/proto';
import type { HttpsResult } from './harness.js';

/** What must never reach a client: stack frames, source or data file paths, SQL, driver names. */
const INTERNALS: ReadonlyArray<[string, RegExp]> = [
  ['a stack frame', /\bat\s+\S+\s+\(|\bat\s+(file:|node:|\/)/],
  ['a stack', /"stack"/],
  ['a file path', /(?:\/[\w.@-]+){2,}\.(?:[cm]?js|ts|db|pem|key|token)\b|\/tmp\/|\/home\/|node_modules/],
  [
    'SQL',
    /\b(?:select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|sqlite|postgres|relation\s+"|no such table)/i,
  ],
  ['TLS internals', /\b(?:ERR_SSL|ERR_TLS|OpenSSL|X509_V_ERR)/i],
];

/**
 * Asserts an error answer is an RFC 9457 problem document for `status`, carrying its request
 * id, and nothing internal. Returns the document for further checks.
 */
export function assertProblem(
  res: HttpsResult,
  status: number,
  code?: string,
): { type: string; title: string; status: number; detail: string; code: string; requestId: string } {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.body}`);
  assert.equal(String(res.headers['content-type']).split(';')[0], PROBLEM_CONTENT_TYPE, res.body);
  const problem = res.json;
  assert.equal(typeof problem, 'object', `not a JSON document: ${res.body}`);
  assert.match(problem.type, /^urn:muster:problem:[a-z_]+$/);
  assert.equal(typeof problem.title, 'string');
  assert.ok(problem.title.length > 0);
  assert.equal(problem.status, status);
  assert.equal(typeof problem.detail, 'string');
  assert.ok(problem.detail.length > 0);
  assert.match(problem.requestId, /^[0-9a-f]{16}$/);
  assert.equal(problem.requestId, res.headers['x-request-id']);
  if (code !== undefined) assert.equal(problem.code, code);
  for (const [what, pattern] of INTERNALS) {
    assert.doesNotMatch(res.body, pattern, `the problem document carries ${what}: ${res.body}`);
  }
  return problem;
}
