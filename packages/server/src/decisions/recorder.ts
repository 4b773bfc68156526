import type { Kysely } from 'kysely';
import type { Schema } from '../store/schema.js';

/**
 * A decision the control plane took. Every state change goes through `record`, inside the
 * transaction that makes the change; the transparency ledger (features/ledger) implements it,
 * so a change whose entry cannot be appended does not happen.
 */
export interface Decision {
  kind:
    | 'token.created'
    | 'token.revoked'
    | 'node.enrolled'
    | 'node.decommissioned'
    | (string & Record<never, never>);
  /** Who decided: `admin`, `node:<id>`, `system`. */
  actor: string;
  /** What it is about: `token:<id>`, `node:<id>`. */
  subject: string;
  data: Record<string, unknown>;
}

export interface DecisionRecorder {
  record(trx: Kysely<Schema>, decision: Decision): Promise<void>;
}
