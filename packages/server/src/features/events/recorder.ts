import type { EventSeverity } from '@muster/proto';
import type { Decision, DecisionRecorder } from '../../decisions/recorder.js';
import type { EventInput, EventSink } from './service.js';

const SEVERITY: Record<string, EventSeverity> = {
  'node.decommissioned': 'warning',
  'node.rotation_requested': 'info',
  'token.revoked': 'info',
  // A restored server took back a certificate it never issued itself: an operator should know.
  'node.certificate_recovered': 'warning',
};

/** The event a decision makes: about its node when its subject is one. */
export function eventOf(decision: Decision): EventInput {
  const nodeId = decision.subject.startsWith('node:') ? decision.subject.slice('node:'.length) : null;
  const severity = SEVERITY[decision.kind] ?? (decision.kind.startsWith('security.') ? 'critical' : 'info');
  return {
    kind: decision.kind,
    nodeId,
    actor: decision.actor,
    severity,
    data: { ...decision.data, subject: decision.subject },
  };
}

/**
 * Every decision also becomes an event, in the same transaction: after the ledger entry (the
 * ledger's lock first, then the events' one, in every transaction), so the event commits with
 * the change or not at all.
 */
export function withEvents(inner: DecisionRecorder, events: Pick<EventSink, 'append'>): DecisionRecorder {
  return {
    async record(trx, decision) {
      await inner.record(trx, decision);
      await events.append(trx, eventOf(decision));
    },
  };
}
