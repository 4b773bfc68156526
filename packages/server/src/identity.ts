import type { RoleSpec } from '@muster/proto';

/*
 * Who is on the other end of a request, for both planes: the types `http/` authenticates into
 * and every feature reads. They live here, below `http/` and `features/`, so neither imports the other.
 */

/** The identity a verified client certificate maps to. */
export interface NodeIdentity {
  id: string;
  name: string;
  /** The serial that was presented. */
  serial: string;
  /** The presented certificate is a renewed one used for the first time: it becomes current now. */
  pending: boolean;
  /** An operator asked this node to move to a fresh key. */
  rekeyRequested: boolean;
  /** The presented certificate comes from the root a CA rotation retires: renew onto the new one. */
  onRetiringRoot?: boolean;
}

/** Why a presented serial maps to no node. */
export type RefusedSerial = 'superseded' | 'other';

/**
 * Who is acting on the admin plane: a user, through one credential. Every one of `roles` must
 * allow a request (the user's own role, and an API token's narrower role when it has one).
 */
export interface Principal {
  user: string;
  credential: string;
  roles: RoleSpec[];
}
