import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FormatRegistry, Kind } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import * as proto from './index.js';
import { Command, Labels, Policy } from './index.js';

// As the agent registers it (agent/src/commands/runner.ts): TypeBox knows no formats of its own.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => Number.isFinite(Date.parse(v)));

/** Every place in a schema where `patternProperties` would let a non-matching key through. */
function openMaps(schema: unknown, at: string, out: string[] = []): string[] {
  if (typeof schema !== 'object' || schema === null) return out;
  const s = schema as Record<string, unknown>;
  // `Type.Record(Type.String(), …)` (`^(.*)$`) is a map of any key by intent (views, event data).
  const patterns = Object.keys((s.patternProperties ?? {}) as object);
  if (patterns.some((p) => p !== '^(.*)$') && s.additionalProperties !== false) out.push(at);
  for (const [key, sub] of Object.entries(s)) if (typeof sub === 'object') openMaps(sub, `${at}.${key}`, out);
  return out;
}

test('no exported schema has a map that lets keys outside its pattern through', () => {
  const schemas = Object.entries(proto).filter(([, v]) => typeof v === 'object' && v !== null && Kind in v);
  assert.ok(schemas.length > 20, `found ${schemas.length}`);
  const open = schemas.flatMap(([name, schema]) => openMaps(schema, name));
  assert.deepEqual(open, []);
});

test('labels, command arguments and policy maps refuse keys outside their patterns', () => {
  assert.equal(Value.Check(Labels, { env: 'prod' }), true);
  for (const key of ['Bad Key', '', 'UPPER', 'a'.repeat(100)])
    assert.equal(Value.Check(Labels, { env: 'prod', [key]: { any: ['json'] } }), false, key);

  const command = {
    v: 1,
    id: 'cmd_closed_0001',
    nonce: 'A'.repeat(22),
    issuedAt: '2026-01-01T00:00:00Z',
    expiresAt: '2026-01-01T00:01:00Z',
    operator: 'alice',
    target: { all: true },
    action: 'uptime',
    args: { host: 'a' },
  };
  assert.equal(Value.Check(Command, command), true);
  assert.equal(Value.Check(Command, { ...command, args: { 'Bad Arg': 'a' } }), false);
  assert.equal(Value.Check(Command, { ...command, target: { labels: { 'Bad Key': 1 } } }), false);

  const action = { argv: ['uptime'], timeoutSec: 5, maxOutputBytes: 10 };
  const policy = { version: 1, operators: [], profiles: { web: { actions: { uptime: action } } } };
  assert.equal(Value.Check(Policy, policy), true);
  assert.equal(Value.Check(Policy, { ...policy, profiles: { 'Not A Profile': { actions: {} } } }), false);
  assert.equal(
    Value.Check(Policy, { ...policy, profiles: { web: { actions: { 'Up Time': action } } } }),
    false,
  );
  const withArgs = { ...action, args: { 'Bad Arg': { pattern: '.*' } } };
  assert.equal(
    Value.Check(Policy, { ...policy, profiles: { web: { actions: { uptime: withArgs } } } }),
    false,
  );
});
