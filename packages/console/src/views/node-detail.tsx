import type { EventEnvelope, EventList, NodeView } from '@muster/proto';
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import { bytes, labelText, time, until } from '../format.js';
import type { FleetModel } from '../model.js';
import { useNow } from '../model.js';
import { StatusCard, useRecentSecurity } from './attention.js';
import { Chart, type Series } from './chart.js';
import { EventRow } from './event-line.js';
import { NodeActions } from './node-actions.js';
import { StatusPill } from './pill.js';

interface Point {
  ts: string;
  cpuPct: number;
  cpuMaxPct: number;
  load1: number;
  memUsedPct: number;
  diskUsedPct: number;
}
interface Telemetry {
  step: string;
  since: string;
  until: string;
  points: Point[];
}

const RANGES = [
  { key: '15m', label: '15 min', ms: 15 * 60_000 },
  { key: '1h', label: '1 h', ms: 3_600_000 },
  { key: '6h', label: '6 h', ms: 6 * 3_600_000 },
  { key: '24h', label: '24 h', ms: 86_400_000 },
  { key: '7d', label: '7 d', ms: 7 * 86_400_000 },
];

export function NodeDetail({ model, id }: { model: FleetModel; id: string }) {
  const now = useNow();
  const [node, setNode] = useState<NodeView | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [events, setEvents] = useState<EventEnvelope[]>([]);
  const [range, setRange] = useState(RANGES[0]!);
  const [telemetry, setTelemetry] = useState<Telemetry | undefined>();
  const security = useRecentSecurity(model, id, now);

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

  useEffect(() => {
    let stop = false;
    const fetchSeries = () => {
      const since = new Date(Date.now() - range.ms).toISOString();
      api<Telemetry>(
        'GET',
        `/v1/nodes/${encodeURIComponent(id)}/telemetry?since=${encodeURIComponent(since)}`,
      )
        .then((t) => !stop && setTelemetry(t))
        .catch(() => {});
    };
    fetchSeries();
    const timer = setInterval(fetchSeries, Math.max(5_000, range.ms / 120));
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, [id, range.key]);

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
  const lifetime = Date.parse(node.cert.notAfter) - Date.parse(node.cert.notBefore);
  const renewalDue = new Date(Date.parse(node.cert.notBefore) + (lifetime * 2) / 3).toISOString();
  const series = telemetry ? toSeries(telemetry.points, node) : [];
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
        <section class="card" aria-labelledby="facts-title">
          <h2 id="facts-title">Facts</h2>
          <dl class="facts">
            <dt>Profile</dt>
            <dd>{node.profile}</dd>
            <dt>Hostname</dt>
            <dd>{node.facts.hostname}</dd>
            <dt>System</dt>
            <dd>
              {node.facts.os} {node.facts.arch} · {node.facts.kernel}
            </dd>
            <dt>CPUs · memory</dt>
            <dd>
              {node.facts.cpus} · {bytes(node.facts.memoryBytes)}
            </dd>
            <dt>Agent</dt>
            <dd>{node.facts.agentVersion}</dd>
            <dt>Labels</dt>
            <dd class="labels">
              {labelText(node.labels).length === 0
                ? 'none'
                : labelText(node.labels).map((l) => (
                    <span class="chip" key={l}>
                      {l}
                    </span>
                  ))}
            </dd>
            <dt>Node id</dt>
            <dd>
              <code>{node.id}</code>
            </dd>
          </dl>
        </section>
        <section class="card" aria-labelledby="cert-title">
          <h2 id="cert-title">Certificate</h2>
          <dl class="facts">
            <dt>Serial</dt>
            <dd>
              <code class="wrap">{node.cert.serial}</code>
            </dd>
            <dt>Issuer</dt>
            <dd>{node.cert.issuer}</dd>
            <dt>Expires</dt>
            <dd>
              {time(node.cert.notAfter)} ({until(node.cert.notAfter, now)})
            </dd>
            <dt>Renewal due</dt>
            <dd>
              {time(renewalDue)} ({until(renewalDue, now)})
            </dd>
            {node.cert.pending && (
              <>
                <dt>Renewed, not yet used</dt>
                <dd>
                  <code class="wrap">{node.cert.pending.serial}</code>
                </dd>
              </>
            )}
            {node.cert.rotationRequestedAt && (
              <>
                <dt>Key rotation asked</dt>
                <dd>{time(node.cert.rotationRequestedAt)}</dd>
              </>
            )}
          </dl>
        </section>
        {latest && (
          <section class="card" aria-labelledby="now-title">
            <h2 id="now-title">Latest heartbeat</h2>
            <dl class="facts">
              <dt>Load</dt>
              <dd>{latest.load.map((l) => l.toFixed(2)).join(' · ')}</dd>
              <dt>Memory free</dt>
              <dd>
                {bytes(latest.memory.availableBytes)} of {bytes(latest.memory.totalBytes)}
              </dd>
              {latest.disks.map((d) => (
                <Fragment key={d.mount}>
                  <dt>Disk {d.mount}</dt>
                  <dd>
                    {bytes(d.totalBytes - d.freeBytes)} of {bytes(d.totalBytes)} used
                  </dd>
                </Fragment>
              ))}
            </dl>
          </section>
        )}
      </div>

      <section aria-labelledby="telemetry-title">
        <div class="toolbar">
          <h2 id="telemetry-title">Telemetry</h2>
          <fieldset class="segmented">
            <legend class="sr-only">Range</legend>
            {RANGES.map((r) => (
              <button
                type="button"
                key={r.key}
                aria-pressed={r.key === range.key}
                onClick={() => setRange(r)}
              >
                {r.label}
              </button>
            ))}
          </fieldset>
          {telemetry && <span class="muted">step {telemetry.step}</span>}
        </div>
        {telemetry ? (
          <div class="charts">
            {series.map((s) => (
              <Chart
                key={s.title}
                series={s}
                since={Date.parse(telemetry.since)}
                until={Date.parse(telemetry.until)}
              />
            ))}
          </div>
        ) : (
          <p class="loading">Loading telemetry…</p>
        )}
      </section>

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

function toSeries(points: Point[], node: NodeView): Series[] {
  const t = (p: Point) => Date.parse(p.ts);
  return [
    { title: 'CPU', unit: '%', max: 100, points: points.map((p) => ({ t: t(p), v: p.cpuPct })) },
    {
      title: 'Load (1 min)',
      unit: '',
      max: Math.max(1, node.facts.cpus),
      points: points.map((p) => ({ t: t(p), v: p.load1 })),
    },
    { title: 'Memory used', unit: '%', max: 100, points: points.map((p) => ({ t: t(p), v: p.memUsedPct })) },
    {
      title: 'Fullest disk',
      unit: '%',
      max: 100,
      points: points.map((p) => ({ t: t(p), v: p.diskUsedPct })),
    },
  ];
}
