import { UsageError } from '@muster/host';
import { EVENT_KINDS, OPERATOR_EVENT_KINDS } from '@muster/proto';
import { safe } from './output.js';

/** Kinds of ledger decisions: every event kind but the status changes and the operators' own. */
export const DECISION_KINDS: readonly string[] = EVENT_KINDS.filter(
  (k) => k !== 'node.status_changed' && !(OPERATOR_EVENT_KINDS as readonly string[]).includes(k),
);

/**
 * Refuses kind names that are not kinds, so a typo is not answered with an empty list. A kind
 * this CLI does not know is still taken when `seen` finds the server has recorded it (a newer server).
 */
export async function checkKinds(
  flag: string,
  kinds: readonly string[],
  known: readonly string[],
  seen: (kind: string) => Promise<boolean>,
): Promise<void> {
  const unknown: string[] = [];
  for (const kind of kinds) if (!known.includes(kind) && !(await seen(kind))) unknown.push(kind);
  if (unknown.length > 0)
    throw new UsageError(
      `${flag}: ${unknown.map((k) => `"${safe(k)}"`).join(', ')} ${unknown.length === 1 ? 'is not a kind' : 'are not kinds'}; the kinds are ${known.join(', ')}`,
    );
}
