import { type NodeFacets, type Resource, roleAllows, type Verb } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Principal } from '../../identity.js';
import type { Schema } from '../../store/schema.js';
import { mayAccess } from './guard.js';

/**
 * Which nodes a principal may read a resource about, or undefined when it may read about any
 * (no rule of its roles is narrowed for it). What a narrowed role's listing is filtered by.
 */
export function readableNodes(
  principal: Principal | null,
  resource: Resource,
  verb: Verb = 'read',
): ((node: NodeFacets) => boolean) | undefined {
  if (!principal || principal.roles.every((role) => roleAllows(role, { verb, resource }))) return undefined;
  return (node) => mayAccess(principal, { verb, resource, node });
}

/** The name of the principal's role that is narrowed for the verb and resource (for a refusal). */
export function narrowedRole(principal: Principal | null, verb: Verb, resource: Resource): string {
  const roles = principal?.roles ?? [];
  return (roles.find((role) => !roleAllows(role, { verb, resource })) ?? roles[0])?.name ?? 'none';
}

/**
 * Why a request about these nodes is outside the principal's scope (naming the role and up to
 * five of the nodes), or undefined when every node is within it.
 */
export function outsideScope(
  principal: Principal | null,
  verb: Verb,
  resource: Resource,
  nodes: ReadonlyArray<NodeFacets & { name: string }>,
): string | undefined {
  if (!principal) return undefined;
  const role = principal.roles.find((r) => nodes.some((node) => !roleAllows(r, { verb, resource, node })));
  if (!role) return undefined;
  const outside = nodes.filter((node) => !roleAllows(role, { verb, resource, node })).map((n) => n.name);
  const named = `${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ` and ${outside.length - 5} more` : ''}`;
  return `role ${role.name} may not ${verb} ${resource} outside its scope (${named})`;
}

/** Filters listings about nodes (events, commands) down to what the principal's roles reach. */
export class ScopeFilter {
  constructor(private readonly db: Kysely<Schema>) {}

  /** The items about nodes the principal may read; an item about no node needs an unnarrowed rule. */
  async items<T>(
    principal: Principal | null,
    resource: Resource,
    items: T[],
    nodesOf: (items: T[]) => Promise<Map<T, string[]>>,
  ): Promise<T[]> {
    const visible = readableNodes(principal, resource);
    if (!visible || items.length === 0) return items;
    const about = await nodesOf(items);
    const facets = await this.facets([...new Set([...about.values()].flat())]);
    return items.filter((item) => {
      const ids = about.get(item) ?? [];
      return ids.length > 0 && ids.every((id) => facets.has(id) && visible(facets.get(id)!));
    });
  }

  /** The node ids each command targets, for `items`. */
  commandTargets = async <T extends { id: string }>(commands: T[]): Promise<Map<T, string[]>> => {
    const rows = await this.db
      .selectFrom('command_targets')
      .select(['command_id', 'node_id'])
      .where(
        'command_id',
        'in',
        commands.map((c) => c.id),
      )
      .execute();
    const byId = new Map<string, string[]>();
    for (const row of rows) byId.set(row.command_id, [...(byId.get(row.command_id) ?? []), row.node_id]);
    return new Map(commands.map((c) => [c, byId.get(c.id) ?? []]));
  };

  /** The labels and profile of the nodes with these ids (those that exist). */
  async facets(ids: string[]): Promise<Map<string, NodeFacets>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('nodes')
      .select(['id', 'labels', 'profile'])
      .where('id', 'in', ids)
      .execute();
    return new Map(
      rows.map((r) => [r.id, { labels: JSON.parse(r.labels) as Record<string, string>, profile: r.profile }]),
    );
  }
}

/** The node an event is about, for `items`. */
export const eventNodes = async <T extends { nodeId?: string | undefined }>(
  events: T[],
): Promise<Map<T, string[]>> => new Map(events.map((e) => [e, e.nodeId ? [e.nodeId] : []]));
