import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type AccessRequest,
  BUILTIN_ROLES,
  type NodeFacets,
  RESOURCES,
  type RoleRule,
  type RoleSpec,
  roleAllows,
  roleProblems,
  roleWithin,
  VERBS,
} from './access.js';

const labelValue = fc.constantFrom('prod', 'staging', 'dev');
const node: fc.Arbitrary<NodeFacets> = fc.record({
  labels: fc.dictionary(fc.constantFrom('env', 'team', 'zone'), labelValue, { maxKeys: 3 }),
  profile: fc.constantFrom('web', 'db', 'default'),
});
const selector = fc.record(
  {
    labels: fc.dictionary(fc.constantFrom('env', 'team', 'zone'), labelValue, { maxKeys: 2 }),
    profile: fc.constantFrom('web', 'db', 'default'),
  },
  { requiredKeys: [] },
);
const rule = (narrowed: boolean): fc.Arbitrary<RoleRule> =>
  fc.record({
    verbs: fc.subarray([...VERBS], { minLength: 1 }),
    resources: fc.subarray([...RESOURCES], { minLength: 1 }),
    ...(narrowed ? { nodes: selector } : {}),
  });
const anyRule = fc.oneof(rule(false), rule(true));
const role: fc.Arbitrary<RoleSpec> = fc.record({
  name: fc.constant('custom'),
  allow: fc.array(anyRule, { maxLength: 6 }),
  deny: fc.array(anyRule, { maxLength: 3 }),
});
const request: fc.Arbitrary<AccessRequest> = fc.record(
  {
    verb: fc.constantFrom(...VERBS),
    resource: fc.constantFrom(...RESOURCES),
    node,
  },
  { requiredKeys: ['verb', 'resource'] },
);

function selects(sel: RoleRule['nodes'], n: NodeFacets): boolean {
  if (!sel) return true;
  if (sel.profile !== undefined && sel.profile !== n.profile) return false;
  return Object.entries(sel.labels ?? {}).every(([k, v]) => n.labels[k] === v);
}

describe('roleAllows', () => {
  test('deny always wins: a request a deny rule names (and selects) is refused', () => {
    fc.assert(
      fc.property(role, request, anyRule, (r, req, deny) => {
        const denying = { ...deny, verbs: [req.verb], resources: [req.resource] };
        const nodeMatched = !deny.nodes || !req.node || selects(deny.nodes, req.node);
        const withDeny = { ...r, allow: [...r.allow, { verbs: [...VERBS], resources: [...RESOURCES] }] };
        withDeny.deny = [...(r.deny ?? []), denying];
        if (nodeMatched) assert.equal(roleAllows(withDeny, req), false);
      }),
    );
  });

  test('a narrowed rule never allows a node outside it', () => {
    fc.assert(
      fc.property(fc.array(rule(true), { minLength: 1, maxLength: 5 }), request, (allow, req) => {
        const r: RoleSpec = { name: 'narrow', allow };
        if (!roleAllows(r, req)) return;
        const nodeResource = ['nodes', 'events', 'commands', 'jobs', 'rollouts'].includes(req.resource);
        if (!nodeResource) return;
        assert.ok(req.node, 'a narrowed rule allowed a request about no node in particular');
        assert.ok(
          allow.some(
            (a) =>
              a.verbs.includes(req.verb) && a.resources.includes(req.resource) && selects(a.nodes, req.node!),
          ),
          'allowed a node no rule selects',
        );
      }),
    );
  });

  test('no custom role gives more than admin', () => {
    fc.assert(
      fc.property(role, request, (r, req) => {
        if (roleAllows(r, req)) assert.ok(roleAllows(BUILTIN_ROLES.admin, req));
      }),
    );
  });

  test('viewer never mutates, and reads everything', () => {
    fc.assert(
      fc.property(request, (req) => {
        assert.equal(roleAllows(BUILTIN_ROLES.viewer, req), req.verb === 'read');
      }),
    );
  });

  test('operator adds notes and incidents, submits and approves commands, and nothing of admin', () => {
    const op = BUILTIN_ROLES.operator;
    assert.ok(roleAllows(op, { verb: 'create', resource: 'events' }));
    assert.ok(roleAllows(op, { verb: 'create', resource: 'commands' }));
    assert.ok(roleAllows(op, { verb: 'approve', resource: 'rollouts' }));
    for (const resource of ['tokens', 'users', 'roles', 'ca', 'policy', 'nodes'] as const)
      for (const verb of ['create', 'update', 'delete'] as const)
        assert.equal(roleAllows(op, { verb, resource }), false, `${verb} ${resource}`);
  });

  test('a credential is within a role only when every grant of it is', () => {
    const readNodes: RoleSpec = { name: 'reader', allow: [{ verbs: ['read'], resources: ['nodes'] }] };
    assert.ok(roleWithin(readNodes, BUILTIN_ROLES.viewer));
    assert.ok(roleWithin(BUILTIN_ROLES.viewer, BUILTIN_ROLES.operator));
    assert.ok(roleWithin(BUILTIN_ROLES.operator, BUILTIN_ROLES.admin));
    assert.equal(roleWithin(BUILTIN_ROLES.admin, BUILTIN_ROLES.operator), false);
    assert.equal(roleWithin(BUILTIN_ROLES.operator, BUILTIN_ROLES.viewer), false);
    assert.equal(roleWithin(BUILTIN_ROLES.viewer, readNodes), false);
  });
});

describe('roleProblems', () => {
  test('names the rule and the unknown verb or resource', () => {
    const problems = roleProblems({
      name: 'oncall',
      allow: [
        { verbs: ['read'], resources: ['nodes'] },
        { verbs: ['reboot'], resources: ['nodes', 'planets'] },
      ],
      deny: [{ verbs: ['read'], resources: ['secrets'] }],
    });
    assert.deepEqual(
      problems.map((p) => p.split(' (')[0]),
      [
        'allow[1]: unknown verb "reboot"',
        'allow[1]: unknown resource "planets"',
        'deny[0]: unknown resource "secrets"',
      ],
    );
    assert.match(roleProblems({ name: 'admin', allow: [] })[0]!, /built-in/);
  });
});
