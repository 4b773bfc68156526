import type { NodeStatus } from '@muster/proto';
import { ago } from '../format.js';
import { type FleetModel, useModel, useNow } from '../model.js';

const SHOWN: NodeStatus[] = ['ok', 'attention', 'critical', 'offline'];

/** Totals by status, channels, heartbeats, the ledger, and whether the console is live. */
export function FleetBar({ model }: { model: FleetModel }) {
  useModel(model);
  const now = useNow();
  const counts: Record<string, number> = { ok: 0, attention: 0, critical: 0, offline: 0 };
  for (const node of model.nodes.values()) counts[node.status] = (counts[node.status] ?? 0) + 1;
  const s = model.summary;
  const { state, detail } = model.stream;
  return (
    <section class="fleet-bar" aria-label="Fleet">
      <ul class="totals">
        {SHOWN.map((status) => (
          <li key={status} data-status={status}>
            <a class="total-link" href={`/nodes?status=${status}`}>
              <span class={`dot dot-${status}`} aria-hidden="true" />
              <strong>{model.nodesLoaded ? counts[status] : '–'}</strong> {status}
            </a>
          </li>
        ))}
      </ul>
      <dl class="figures">
        <div>
          <dt>Channels held</dt>
          <dd data-figure="channels">{s ? s.channelsHeld : '–'}</dd>
        </div>
        <div>
          <dt>Heartbeats/s</dt>
          <dd data-figure="heartbeats">
            {s?.heartbeatsPerSec != null ? s.heartbeatsPerSec.toFixed(1) : '–'}
          </dd>
        </div>
        <div>
          <dt>Ledger</dt>
          <dd data-figure="ledger">{s?.ledger ? `${s.ledger.size} entries` : '–'}</dd>
        </div>
        <div>
          <dt>Checkpoint</dt>
          <dd data-figure="checkpoint">
            {s?.ledger?.checkpoint ? ago(s.ledger.checkpoint.signedAt, now) : '–'}
          </dd>
        </div>
      </dl>
      <p class={`stream stream-${state}`} role="status" data-stream={state}>
        {state === 'live'
          ? 'Live'
          : state === 'connecting'
            ? 'Connecting to the event stream…'
            : `Lost the event stream (${detail ?? 'connection dropped'}); reconnecting…`}
      </p>
      {model.gapNote && <p class="note">{model.gapNote}</p>}
    </section>
  );
}
