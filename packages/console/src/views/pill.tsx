import type { NodeStatus } from '@muster/proto';

/** A node's status and, beside it, the first reason in words. */
export function StatusPill({ status, reason }: { status: NodeStatus; reason?: string | undefined }) {
  return (
    <span class="status-cell">
      <span class={`pill pill-${status}`}>{status}</span>
      {reason && <span class="reason">{reason}</span>}
    </span>
  );
}
