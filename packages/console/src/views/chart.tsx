import { time } from '../format.js';

/** A small SVG line chart: no library, a few hundred bytes, drawn from the points it is given. */

export interface Series {
  title: string;
  unit: string;
  /** The value axis' top; the data's own maximum when larger. */
  max: number;
  points: Array<{ t: number; v: number }>;
}

const W = 600;
const H = 150;
const PAD = { left: 36, right: 8, top: 8, bottom: 20 };

function fmt(v: number, unit: string): string {
  return `${v >= 10 ? Math.round(v) : v.toFixed(1)}${unit}`;
}

export function Chart({ series, since, until }: { series: Series; since: number; until: number }) {
  const { points, unit } = series;
  const max = Math.max(series.max, ...points.map((p) => p.v));
  const x = (t: number) => PAD.left + ((t - since) / Math.max(1, until - since)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / (max || 1)) * (H - PAD.top - PAD.bottom);
  const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const latest = points.at(-1);
  const peak = points.reduce((m, p) => Math.max(m, p.v), 0);
  const summary = latest
    ? `latest ${fmt(latest.v, unit)}, peak ${fmt(peak, unit)} over ${points.length} points`
    : 'no data in this range';
  return (
    <figure class="chart" data-chart={series.title}>
      <figcaption>
        <strong>{series.title}</strong> <span class="muted">{summary}</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${series.title}: ${summary}`}
        preserveAspectRatio="none"
      >
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} />
            <text class="axis" x={PAD.left - 4} y={y(max * f) + 4} text-anchor="end">
              {fmt(max * f, unit)}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD.left} y={H - 4}>
          {time(new Date(since).toISOString())}
        </text>
        <text class="axis" x={W - PAD.right} y={H - 4} text-anchor="end">
          {time(new Date(until).toISOString())}
        </text>
        {points.length > 1 && <polyline class="line" points={line} />}
        {points.length === 1 && latest && <circle class="line-dot" cx={x(latest.t)} cy={y(latest.v)} r={3} />}
      </svg>
    </figure>
  );
}
