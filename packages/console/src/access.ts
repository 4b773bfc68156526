/**
 * What the signed-in user may do, from the role rules `GET /v1/me` returns, decided by the same
 * function the server uses. The console leaves out what would be refused; the server still
 * refuses it, so this is about not offering a button that cannot work, never about security.
 */
import type { MeView, NodeFacets, Resource, Verb } from '@muster/proto';
import { roleAllows, roleAllowsSome } from '@muster/proto/web';
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const Me = createContext<MeView | undefined>(undefined);

export interface Can {
  /** Every role allows it (about this node, when one is given). */
  (verb: Verb, resource: Resource, node?: NodeFacets): boolean;
  /** Every role allows it for some items: a role narrowed to some nodes can still act on those. */
  some(verb: Verb, resource: Resource): boolean;
}

export function canFor(me: MeView | undefined): Can {
  const roles = me?.roles ?? [];
  const can = ((verb: Verb, resource: Resource, node?: NodeFacets) =>
    roles.length > 0 &&
    roles.every((role) => roleAllows(role, { verb, resource, ...(node ? { node } : {}) }))) as Can;
  can.some = (verb, resource) =>
    roles.length > 0 && roles.every((role) => roleAllowsSome(role, verb, resource));
  return can;
}

/** What the signed-in user may do, for a view to leave out the rest. */
export function useCan(): Can {
  return canFor(useContext(Me));
}
