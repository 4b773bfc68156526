import type { EventEnvelope, EventList, NodeView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ago, time } from '../format.js';
import type { FleetModel } from '../model.js';
import { Kind, When } from './ref.js';

/** The security kinds the server records; the ledger's filter lists them too. */
export const SECURITY_KINDS = [
  'security.duplicate_channel',
  'security.name_takeover_refused',
  'security.superseded_certificate_used',
];

/** How far back a security event still counts as needing attention. */
const SECURITY_WINDOW_MS = 24 * 3_600_000;

const isAlarm = (e: EventEnvelope) =>
  e.kind.startsWith('security.') && (e.severity === 'warning' || e.severity === 'critical');

/**
 * The node's warning and critical security events of the last day: read once, then followed
 * live. A node's status says nothing of them (it is about heartbeats and certificates), yet an
 * identity used twice is the first thing an operator on the node's page must see.
 */
export function useRecentSecurity(model: FleetModel, id: string, now: number): EventEnvelope[] {
  const [found, setFound] = useState<EventEnvelope[]>([]);
  useEffect(() => {
    setFound([]);
    const since = new Date(Date.now() - SECURITY_WINDOW_MS).toISOString();
    const q = new URLSearchParams({ node: id, kind: SECURITY_KINDS.join(','), since, limit: '1000' });
    const add = (list: EventEnvelope[]) =>
      setFound((had) => {
        const byId = new Map(had.map((e) => [e.id, e]));
        for (const e of list) if (isAlarm(e)) byId.set(e.id, e);
        return [...byId.values()].sort((a, b) => b.id - a.id);
      });
    void api<EventList>('GET', `/v1/events?${q}`)
      .then((list) => add(list.items))
      .catch(() => {});
    return model.onEachEvent((e) => e.nodeId === id && isAlarm(e) && add([e]));
  }, [id]);
  return found.filter((e) => now - Date.parse(e.ts) < SECURITY_WINDOW_MS);
}

/** The node's status card: each reason its status gives, then its recent security events by kind. */
export function StatusCard({
  node,
  security,
  statusSince,
  now,
}: {
  node: NodeView;
  security: EventEnvelope[];
  statusSince: string | undefined;
  now: number;
}) {
  const byKind = new Map<string, EventEnvelope[]>();
  for (const e of security) byKind.set(e.kind, [...(byKind.get(e.kind) ?? []), e]);
  const calm = node.reasons.length === 0 && byKind.size === 0;
  return (
    <section class="card" aria-labelledby="reasons-title">
      <h2 id="reasons-title">Status</h2>
      {calm ? (
        <p>Nothing needs attention.</p>
      ) : (
        <ul class="reasons" aria-label="Needs attention">
          {node.reasons.map((r) => (
            <li key={r}>
              {r}
              {statusSince && <span class="muted"> · since {time(statusSince)}</span>}
            </li>
          ))}
          {[...byKind].map(([kind, list]) => {
            const critical = list.some((e) => e.severity === 'critical');
            return (
              <li key={kind} class={`sev-${critical ? 'critical' : 'warning'}`} data-attention={kind}>
                <span class="sev">{critical ? 'critical' : 'warning'}</span> <Kind kind={kind} />{' '}
                {list.length === 1 ? 'once' : `${list.length} times`} in the last 24 h · latest{' '}
                <When iso={list[0]!.ts} now={now} />
              </li>
            );
          })}
        </ul>
      )}
      <p class="muted">
        Last seen <span data-field="last-seen">{ago(node.lastSeenAt, now)}</span> · enrolled{' '}
        {time(node.enrolledAt)}
      </p>
    </section>
  );
}
