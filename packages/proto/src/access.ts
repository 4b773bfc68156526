import { type Static, Type } from '@sinclair/typebox';
import { isProfile } from './names.js';
import {
  RESOURCES,
  type Resource,
  type RoleRule,
  type RoleSpec,
  roleAllows,
  VERBS,
  type Verb,
} from './roles.js';
import { Labels } from './wire.js';

export * from './roles.js';

export const BUILTIN_ROLE_NAMES = ['viewer', 'operator', 'admin'] as const;
export const ROLE_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';
export const USER_NAME_PATTERN = '^[a-z][a-z0-9._-]{0,62}$';

const RuleSchema = Type.Object(
  {
    verbs: Type.Array(Type.String({ maxLength: 32 }), { minItems: 1, maxItems: 16 }),
    resources: Type.Array(Type.String({ maxLength: 32 }), { minItems: 1, maxItems: 32 }),
    nodes: Type.Optional(
      Type.Object(
        {
          labels: Type.Optional(Labels),
          profile: Type.Optional(Type.String({ maxLength: 64 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export const RoleSpecSchema = Type.Object(
  {
    name: Type.String({ pattern: ROLE_NAME_PATTERN }),
    allow: Type.Array(RuleSchema, { maxItems: 256 }),
    deny: Type.Optional(Type.Array(RuleSchema, { maxItems: 256 })),
  },
  { additionalProperties: false },
);
export const RoleView = Type.Object({
  name: Type.String(),
  builtin: Type.Boolean(),
  allow: Type.Array(RuleSchema),
  deny: Type.Array(RuleSchema),
  updatedAt: Type.Union([Type.String(), Type.Null()]),
});
export type RoleView = Static<typeof RoleView>;

export const UserView = Type.Object({
  name: Type.String(),
  role: Type.String(),
  disabled: Type.Boolean(),
  disabledAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  createdBy: Type.String(),
  /** The e-mail single sign-on matches the user by (its verified `email` claim); null: none. */
  email: Type.Union([Type.String(), Type.Null()]),
});
export type UserView = Static<typeof UserView>;
/**
 * An e-mail address as SSO matches it: one `@`, no spaces, compared lowercased. Not a full
 * RFC 5322 check: the identity provider vouches for the address, this only keeps typos out.
 */
export const EMAIL_PATTERN = '^[^@\\s]{1,64}@[^@\\s]{1,254}$';
export const UserCreateRequest = Type.Object(
  {
    name: Type.String({ pattern: USER_NAME_PATTERN }),
    role: Type.String({ pattern: ROLE_NAME_PATTERN }),
    email: Type.Optional(Type.String({ pattern: EMAIL_PATTERN, maxLength: 320 })),
  },
  { additionalProperties: false },
);
export type UserCreateRequest = Static<typeof UserCreateRequest>;
export const UserRoleRequest = Type.Object(
  { role: Type.String({ pattern: ROLE_NAME_PATTERN }) },
  { additionalProperties: false },
);
export type UserRoleRequest = Static<typeof UserRoleRequest>;
/** `POST /v1/users/:name/email`: the address SSO matches the user by; null removes it. */
export const UserEmailRequest = Type.Object(
  { email: Type.Union([Type.String({ pattern: EMAIL_PATTERN, maxLength: 320 }), Type.Null()]) },
  { additionalProperties: false },
);
export type UserEmailRequest = Static<typeof UserEmailRequest>;

export const ApiTokenView = Type.Object({
  id: Type.String(),
  user: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  /** The role the token acts with; null: its user's own role. */
  role: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
});
export type ApiTokenView = Static<typeof ApiTokenView>;
export const ApiTokenCreateRequest = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    ttlSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86_400 })),
    role: Type.Optional(Type.String({ pattern: ROLE_NAME_PATTERN })),
    user: Type.Optional(Type.String({ pattern: USER_NAME_PATTERN })),
  },
  { additionalProperties: false },
);
export type ApiTokenCreateRequest = Static<typeof ApiTokenCreateRequest>;
export const ApiTokenCreated = Type.Composite([ApiTokenView, Type.Object({ secret: Type.String() })]);
export type ApiTokenCreated = Static<typeof ApiTokenCreated>;

const ALL_RULE: RoleRule = { verbs: [...VERBS], resources: [...RESOURCES] };

/** The built-in roles, as CONTRACT section 8 defines them. */
export const BUILTIN_ROLES: Readonly<Record<(typeof BUILTIN_ROLE_NAMES)[number], RoleSpec>> = {
  viewer: { name: 'viewer', allow: [{ verbs: ['read'], resources: [...RESOURCES] }] },
  operator: {
    name: 'operator',
    allow: [
      { verbs: ['read'], resources: [...RESOURCES] },
      // Notes and incidents are events an operator writes.
      { verbs: ['create'], resources: ['events'] },
      { verbs: ['create', 'approve'], resources: ['commands', 'jobs', 'rollouts'] },
    ],
  },
  admin: { name: 'admin', allow: [ALL_RULE] },
};

export function builtinRole(name: string): RoleSpec | undefined {
  return Object.hasOwn(BUILTIN_ROLES, name) ? BUILTIN_ROLES[name as keyof typeof BUILTIN_ROLES] : undefined;
}

/**
 * Whether every request `lesser` allows, `greater` allows too (so a credential with `lesser` is
 * not above a holder of `greater`). Answered safely: a custom role is under itself and under
 * any built-in role that grants each of its rules' verbs and resources outright.
 */
export function roleWithin(lesser: RoleSpec, greater: RoleSpec): boolean {
  if (lesser.name === greater.name) return true;
  if (!builtinRole(greater.name)) return false;
  return lesser.allow.every((rule) =>
    rule.verbs.every((verb) =>
      rule.resources.every((resource) =>
        roleAllows(greater, { verb: verb as Verb, resource: resource as Resource }),
      ),
    ),
  );
}

/** What is wrong with a role file, one sentence each, naming the rule by its list and index. */
export function roleProblems(spec: RoleSpec): string[] {
  const problems: string[] = [];
  if (builtinRole(spec.name)) problems.push(`"${spec.name}" is a built-in role and cannot be changed`);
  const check = (list: 'allow' | 'deny', rules: RoleRule[]) =>
    rules.forEach((rule, i) => {
      const where = `${list}[${i}]`;
      for (const verb of rule.verbs)
        if (!(VERBS as readonly string[]).includes(verb))
          problems.push(`${where}: unknown verb "${verb}" (verbs: ${VERBS.join(', ')})`);
      for (const resource of rule.resources)
        if (!(RESOURCES as readonly string[]).includes(resource))
          problems.push(`${where}: unknown resource "${resource}" (resources: ${RESOURCES.join(', ')})`);
      if (rule.nodes?.profile !== undefined && !isProfile(rule.nodes.profile))
        problems.push(`${where}: nodes.profile "${rule.nodes.profile}" is not a profile name`);
    });
  check('allow', spec.allow);
  check('deny', spec.deny ?? []);
  return problems;
}

/** `POST /v1/users/:name/certificates/revoke`: one certificate by serial, or (no serial) every current one. */
export const UserCertificatesRevokeRequest = Type.Object(
  { serial: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{1,64}$' })) },
  { additionalProperties: false },
);
export type UserCertificatesRevokeRequest = Static<typeof UserCertificatesRevokeRequest>;
export const UserCertificatesRevoked = Type.Object({
  user: Type.String(),
  /** The serials revoked now; empty when none was current (revoking twice is not an error). */
  revoked: Type.Array(Type.String()),
});
export type UserCertificatesRevoked = Static<typeof UserCertificatesRevoked>;
