import { readFileSync } from 'node:fs';
import { UsageError } from '@muster/host';
import { ROLE_NAME_PATTERN, type RoleRule, type RoleSpec, type RoleView, roleProblems } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe, table } from '../output.js';
import { one } from './users.js';

/** Where in the file a problem's quoted value first appears, as `line N`. */
function lineOf(text: string, problem: string, from: number): string {
  const colon = problem.indexOf(':');
  const value = /"([^"]*)"/.exec(colon < 0 ? problem : problem.slice(colon))?.[1];
  if (value === undefined) return '';
  const at = text.indexOf(JSON.stringify(value), from);
  return at < 0 ? '' : `line ${text.slice(0, at).split('\n').length}: `;
}

/** Reads and checks a role file; every problem is a usage error naming the line and the rule. */
export function readRoleFile(file: string): RoleSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let spec: RoleSpec;
  try {
    spec = JSON.parse(text) as RoleSpec;
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
  const shape = roleShapeProblem(spec);
  if (shape) throw new UsageError(`${file}: ${lineOf(text, shape, 0)}${shape}`);
  const problems = roleProblems(spec);
  if (problems.length > 0) {
    const denyAt = Math.max(0, text.indexOf('"deny"'));
    const where = problems.map((p) => `${lineOf(text, p, p.startsWith('deny') ? denyAt : 0)}${p}`);
    throw new UsageError(`${file}: ${where.join('; ')}`);
  }
  return spec;
}

function roleShapeProblem(spec: unknown): string | undefined {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    return 'a role is an object {name, allow, deny}';
  const role = spec as Record<string, unknown>;
  for (const key of Object.keys(role))
    if (!['name', 'allow', 'deny'].includes(key))
      return `unknown field "${safe(key)}" (a role has name, allow, deny)`;
  if (typeof role.name !== 'string' || !new RegExp(ROLE_NAME_PATTERN).test(role.name))
    return `name must match ${ROLE_NAME_PATTERN}`;
  for (const list of ['allow', 'deny'] as const) {
    const rules = role[list];
    if (rules === undefined && list === 'deny') continue;
    if (!Array.isArray(rules)) return `${list} must be a list of rules`;
    for (const [i, rule] of (rules as RoleRule[]).entries()) {
      if (typeof rule !== 'object' || rule === null)
        return `${list}[${i}] must be {verbs, resources, nodes?}`;
      for (const key of Object.keys(rule))
        if (!['verbs', 'resources', 'nodes'].includes(key))
          return `${list}[${i}]: unknown field "${safe(key)}" (a rule has verbs, resources, nodes)`;
      for (const key of ['verbs', 'resources'] as const)
        if (
          !Array.isArray(rule[key]) ||
          rule[key].length === 0 ||
          !rule[key].every((v) => typeof v === 'string')
        )
          return `${list}[${i}].${key} must be a non-empty list of names`;
    }
  }
  return undefined;
}

export const roleApply: Command = {
  path: ['role', 'apply'],
  args: 'FILE',
  summary: 'create or replace a custom role from a JSON file',
  details:
    'A role is {name, allow:[rule], deny:[rule]}; a rule is {verbs, resources, nodes?:{labels?, profile?}}.\n' +
    'deny wins; nodes narrows a rule to the nodes it matches.\n\n' +
    'Example (oncall.json):\n' +
    '  {"name": "oncall", "allow": [{"verbs": ["read", "create", "approve"],\n' +
    '    "resources": ["nodes", "events", "commands"], "nodes": {"labels": {"env": "prod"}}}]}\n' +
    '  muster role apply oncall.json',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const [file, extra] = positionals;
    if (!file || extra !== undefined) throw new UsageError('give exactly one role FILE');
    const spec = readRoleFile(file);
    const role = await adminClient(values).call<RoleView>('POST', '/v1/roles', spec);
    if (values.json) printJson(role);
    else
      console.log(
        `Role ${safe(role.name)} applied: ${role.allow.length} allow, ${role.deny.length} deny rules.`,
      );
    return 0;
  },
};

const ruleText = (rule: RoleRule) => {
  const nodes = rule.nodes
    ? ` on nodes ${[
        ...Object.entries(rule.nodes.labels ?? {}).map(([k, v]) => `${k}=${v}`),
        ...(rule.nodes.profile ? [`profile=${rule.nodes.profile}`] : []),
      ].join(',')}`
    : '';
  return safe(`${rule.verbs.join(',')} ${rule.resources.join(',')}${nodes}`);
};

export const roleList: Command = {
  path: ['role', 'ls'],
  summary: 'list the built-in and custom roles',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<{ items: RoleView[] }>('GET', '/v1/roles');
    if (values.json) {
      printJson(items);
      return 0;
    }
    console.log(
      table(
        ['NAME', 'KIND', 'ALLOW', 'DENY'],
        items.map((r) => [
          safe(r.name),
          r.builtin ? 'built-in' : 'custom',
          String(r.allow.length),
          String(r.deny.length),
        ]),
      ),
    );
    return 0;
  },
};

export const roleShow: Command = {
  path: ['role', 'show'],
  args: 'NAME',
  summary: "show a role's allow and deny rules",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const name = one(positionals, 'role NAME', ROLE_NAME_PATTERN);
    const role = await adminClient(values).call<RoleView>('GET', `/v1/roles/${name}`);
    if (values.json) {
      printJson(role);
      return 0;
    }
    console.log(`Role ${safe(role.name)} (${role.builtin ? 'built-in' : 'custom'})`);
    for (const rule of role.allow) console.log(`  allow ${ruleText(rule)}`);
    for (const rule of role.deny) console.log(`  deny  ${ruleText(rule)}`);
    return 0;
  },
};
