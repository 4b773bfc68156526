import type { EventEnvelope, EventList, NodeView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import type { FleetModel } from '../model.js';
import { useNow } from '../model.js';
import { StatusCard, useRecentSecurity } from './attention.js';
import { EventRow } from './event-line.js';
import { NodeActions } from './node-actions.js';
import { CertificateCard, FactsCard, LatestCard } from './node-cards.js';
import { NodeTelemetry, useTelemetry } from './node-telemetry.js';
import { StatusPill } from './pill.js';

export function NodeDetail({ model, id }: { model: FleetModel; id: string }) {
  const now = useNow();
  const [node, setNode] = useState<NodeView | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [events, setEvents] = useState<EventEnvelope[]>([]);
  const security = useRecentSecurity(model, id, now);
  const telemetry = useTelemetry(id);

  const load = () =>
    api<NodeView>('GET', `/v1/nodes/${encodeURIComponent(id)}`)
      .then((n) => {
        model.names.learnNodes([n]);
        setNode(n);
        setError(undefined);
      })
      .catch((err) => setError(message(err)));

  useEffect(() => {
    setNode(undefined);
    setEvents([]);
    void load();
    void api<EventList>('GET', `/v1/events?node=${encodeURIComponent(id)}&limit=100`)
      .then((list) => setEvents((live) => merge(live, list.items)))
      .catch(() => {});
    // The timeline follows the node live; a change of its state reads the node again.
    return model.onEachEvent((event) => {
      if (event.nodeId !== id) return;
      setEvents((list) => merge(list, [event]));
      if (event.kind.startsWith('node.')) void load();
    });
  }, [id]);

  if (error && !node) {
    return (
      <section>
        <h1>Node</h1>
        <p class="error" role="alert">
          {error}
        </p>
        <p>
          <a href="/nodes">Back to the nodes</a>
        </p>
      </section>
    );
  }
  if (!node) return <p class="loading">Loading node…</p>;

  const statusSince = events.find((e) => e.kind === 'node.status_changed')?.ts;
  const latest = node.latest;

  return (
    <section class="node-detail" aria-labelledby="node-title">
      <p class="crumbs">
        <a href="/nodes">Nodes</a> /
      </p>
      <div class="node-head">
        <h1 id="node-title">{node.name}</h1>
        <StatusPill status={node.status} />
        <NodeActions node={node} onChanged={() => void load()} />
      </div>
      <div class="cards">
        <StatusCard node={node} security={security} statusSince={statusSince} now={now} />
        <FactsCard node={node} />
        <CertificateCard node={node} now={now} />
        {latest && <LatestCard latest={latest} />}
      </div>

      <NodeTelemetry node={node} view={telemetry} />

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        {events.length === 0 ? (
          <p class="muted">No events about this node yet.</p>
        ) : (
          <ol class="events">
            {events.slice(0, 200).map((e) => (
              <EventRow key={e.id} event={e} names={model.names} />
            ))}
          </ol>
        )}
      </section>
    </section>
  );
}

/** Newest first, each event once. */
function merge(a: EventEnvelope[], b: EventEnvelope[]): EventEnvelope[] {
  const byId = new Map<number, EventEnvelope>();
  for (const e of [...a, ...b]) byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => y.id - x.id);
}
