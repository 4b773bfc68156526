/**
 * Authorization's one decision, pure and free of schemas, so the console bundles it as it is:
 * a role's rules over verbs and resources, narrowed to nodes by labels or profile; deny wins.
 */

/** What a request does: the verbs a role's rule grants or denies. */
export const VERBS = ['read', 'create', 'update', 'delete', 'approve'] as const;
export type Verb = (typeof VERBS)[number];

/** What a request is about: the resources a role's rule names. */
export const RESOURCES = [
  'nodes',
  'tokens',
  'events',
  'commands',
  'jobs',
  'rollouts',
  'ledger',
  'policy',
  'operators',
  'users',
  'roles',
  'ca',
  'apitokens',
] as const;
export type Resource = (typeof RESOURCES)[number];

/** Resources a rule's `nodes` narrowing applies to: the ones whose items are about nodes. */
export const NODE_RESOURCES: ReadonlySet<Resource> = new Set([
  'nodes',
  'events',
  'commands',
  'jobs',
  'rollouts',
]);

/** The nodes a rule is narrowed to: all given labels and the profile must match. */
export interface NodeSelector {
  labels?: Record<string, string>;
  profile?: string;
}

export interface RoleRule {
  verbs: string[];
  resources: string[];
  nodes?: NodeSelector;
}

/** A role: what its holders may do. `deny` wins over `allow`. */
export interface RoleSpec {
  name: string;
  allow: RoleRule[];
  deny?: RoleRule[];
}

/** A node as a rule's narrowing sees it. */
export interface NodeFacets {
  labels: Record<string, string>;
  profile: string;
}

/** One request as authorization sees it. */
export interface AccessRequest {
  verb: Verb;
  resource: Resource;
  /** The node the request is about, when it is about one. */
  node?: NodeFacets;
}

function selects(selector: NodeSelector, node: NodeFacets): boolean {
  if (selector.profile !== undefined && selector.profile !== node.profile) return false;
  for (const [key, value] of Object.entries(selector.labels ?? {})) {
    if (!Object.hasOwn(node.labels, key) || node.labels[key] !== value) return false;
  }
  return true;
}

function names(rule: RoleRule, request: AccessRequest): boolean {
  return rule.verbs.includes(request.verb) && rule.resources.includes(request.resource);
}

/**
 * Whether a role allows a request: the one decision behind every admin-plane request. A rule
 * narrowed to nodes counts only for a request about a node it selects; a narrowed deny counts
 * for a request about no node in particular too, since it may be about one the deny covers.
 * A deny that names the request always wins.
 */
export function roleAllows(role: RoleSpec, request: AccessRequest): boolean {
  const narrowable = NODE_RESOURCES.has(request.resource);
  for (const rule of role.deny ?? []) {
    if (!names(rule, request)) continue;
    if (!rule.nodes || !narrowable || !request.node || selects(rule.nodes, request.node)) return false;
  }
  return role.allow.some(
    (rule) =>
      names(rule, request) &&
      (!rule.nodes || !narrowable || (request.node !== undefined && selects(rule.nodes, request.node))),
  );
}

/**
 * Whether a role allows the verb on at least some items of the resource: a listing is then
 * answered, filtered item by item with `roleAllows`.
 */
export function roleAllowsSome(role: RoleSpec, verb: Verb, resource: Resource): boolean {
  const request = { verb, resource };
  if ((role.deny ?? []).some((rule) => names(rule, request) && !rule.nodes)) return false;
  return role.allow.some((rule) => names(rule, request));
}
