import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Schema } from '../store/schema.js';

/**
 * A decision the control plane took. Every state change goes through `record`, inside the
 * transaction that makes the change, so the transparency ledger can take this seam over
 * without touching the features.
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

/** Appends decisions to the `decisions` table in the caller's transaction. */
export function tableRecorder(clock: Clock): DecisionRecorder {
  return {
    async record(trx, decision) {
      await trx
        .insertInto('decisions')
        .values({
          ts: clock.now(),
          kind: decision.kind,
          actor: decision.actor,
          subject: decision.subject,
          data: JSON.stringify(decision.data),
        })
        .execute();
    },
  };
}
