import type { NodeView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Chart, type Series } from './chart.js';

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

/**
 * A node's telemetry over the range the reader picks, refreshed while shown. Read from the
 * start (with the node itself), and the range kept when the reader moves to another node.
 */
export function useTelemetry(id: string) {
  const [range, setRange] = useState(RANGES[0]!);
  const [telemetry, setTelemetry] = useState<Telemetry | undefined>();
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
  return { range, setRange, telemetry };
}

/** The telemetry charts and their range picker. */
export function NodeTelemetry({ node, view }: { node: NodeView; view: ReturnType<typeof useTelemetry> }) {
  const { range, setRange, telemetry } = view;
  const series = telemetry ? toSeries(telemetry.points, node) : [];
  return (
    <section aria-labelledby="telemetry-title">
      <div class="toolbar">
        <h2 id="telemetry-title">Telemetry</h2>
        <fieldset class="segmented">
          <legend class="sr-only">Range</legend>
          {RANGES.map((r) => (
            <button type="button" key={r.key} aria-pressed={r.key === range.key} onClick={() => setRange(r)}>
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
  );
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
