import type { CommandApprovals, CommandState } from '@muster/proto';
import { safe } from '../output.js';

/** `awaiting approval: 1 of 2 signatures (alice)` or `approved by alice, bob: sent to its nodes`. */
export function approvalLine(state: CommandState | undefined, approvals: CommandApprovals): string {
  const names = approvals.signers
    .map((s) =>
      s.user && s.user !== s.operator ? `${safe(s.operator)} (user ${safe(s.user)})` : safe(s.operator),
    )
    .join(', ');
  const count = `${approvals.signers.length} of ${approvals.required} signature(s)`;
  if (state === 'awaiting_approval') return `awaiting approval: ${count} (${names})`;
  if (state === 'expired') return `expired awaiting approval: ${count} (${names})`;
  return `signed by ${names}: sent to its nodes`;
}

/** `1/2` for the list's SIGNED column. */
export function signedCount(approvals: CommandApprovals | undefined): string {
  return approvals ? `${approvals.signers.length}/${approvals.required}` : '';
}
