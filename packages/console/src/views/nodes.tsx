import type { NodeStatus, NodeView } from '@muster/proto';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ago, labelText } from '../format.js';
import { type FleetModel, useModel, useNow } from '../model.js';
import { navigate } from '../router.js';
import { StatusPill } from './pill.js';

/** Row height in pixels; the list draws only the rows in view, so 10,000 nodes cost what 40 do. */
const ROW = 44;
const OVERSCAN = 8;
const STATUSES: NodeStatus[] = ['offline', 'critical', 'attention', 'ok'];

interface Filters {
  q: string;
  status: string;
  profile: string;
  label: string;
}

function readFilters(): Filters {
  const p = new URLSearchParams(location.search);
  return {
    q: p.get('q') ?? '',
    status: p.get('status') ?? '',
    profile: p.get('profile') ?? '',
    label: p.get('label') ?? '',
  };
}

function matches(node: NodeView, f: Filters): boolean {
  if (f.status && node.status !== f.status) return false;
  if (f.profile && node.profile !== f.profile) return false;
  if (f.q && !node.name.includes(f.q.trim().toLowerCase())) return false;
  if (f.label) {
    const eq = f.label.indexOf('=');
    const key = (eq < 0 ? f.label : f.label.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : f.label.slice(eq + 1).trim();
    if (!(key in node.labels) || (value !== undefined && value !== '' && node.labels[key] !== value))
      return false;
  }
  return true;
}

export function NodesView({ model }: { model: FleetModel }) {
  useModel(model);
  const now = useNow();
  const filters = readFilters();
  const setFilter = (key: keyof Filters, value: string) => {
    const p = new URLSearchParams(location.search);
    if (value) p.set(key, value);
    else p.delete(key);
    const query = p.toString();
    navigate(`/nodes${query ? `?${query}` : ''}`, true);
  };
  const all = model.sortedNodes();
  const shown = useMemo(
    () => all.filter((n) => matches(n, filters)),
    [all, filters.q, filters.status, filters.profile, filters.label],
  );
  const profiles = useMemo(() => [...new Set(all.map((n) => n.profile))].sort(), [all]);

  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 800 });
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let frame = 0;
    const measure = () => {
      frame = 0;
      setView({ top: el.scrollTop, height: el.clientHeight });
    };
    const onScroll = () => {
      frame ||= requestAnimationFrame(measure);
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const resize = new ResizeObserver(onScroll);
    resize.observe(el);
    measure();
    return () => {
      el.removeEventListener('scroll', onScroll);
      resize.disconnect();
      cancelAnimationFrame(frame);
    };
  }, []);
  const first = Math.max(0, Math.floor(view.top / ROW) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((view.top + view.height) / ROW) + OVERSCAN);
  const rows = shown.slice(first, last);

  return (
    <section class="nodes" aria-labelledby="nodes-title">
      <div class="toolbar">
        <h1 id="nodes-title">Nodes</h1>
        <form class="filters" aria-label="Filter nodes" onSubmit={(e) => e.preventDefault()}>
          <label>
            Name
            <input
              type="search"
              value={filters.q}
              placeholder="web-"
              onInput={(e) => setFilter('q', (e.target as HTMLInputElement).value)}
            />
          </label>
          <label>
            Status
            <select
              value={filters.status}
              onChange={(e) => setFilter('status', (e.target as HTMLSelectElement).value)}
            >
              <option value="">any</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label>
            Profile
            <select
              value={filters.profile}
              onChange={(e) => setFilter('profile', (e.target as HTMLSelectElement).value)}
            >
              <option value="">any</option>
              {profiles.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label>
            Label
            <input
              type="search"
              value={filters.label}
              placeholder="env=prod"
              onInput={(e) => setFilter('label', (e.target as HTMLInputElement).value)}
            />
          </label>
        </form>
      </div>
      <p class="count" aria-live="polite" data-count={shown.length}>
        {!model.nodesLoaded
          ? model.loadError
            ? `Could not load the nodes: ${model.loadError}`
            : 'Loading nodes…'
          : shown.length === all.length
            ? `${all.length} nodes`
            : `${shown.length} of ${all.length} nodes`}
      </p>
      <div class="scroller" ref={box}>
        <table class="table" aria-label="Nodes, what needs attention first" aria-rowcount={shown.length + 1}>
          <thead>
            <tr class="row head">
              <th scope="col">Status</th>
              <th scope="col">Name</th>
              <th scope="col" class="wide">
                Profile
              </th>
              <th scope="col" class="wide">
                Labels
              </th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            <tr class="pad" style={{ height: `${first * ROW}px` }} />
            {rows.map((node, i) => (
              <tr
                class="row"
                key={node.id}
                aria-rowindex={first + i + 2}
                data-node={node.name}
                data-status={node.status}
              >
                <td>
                  <StatusPill status={node.status} reason={node.reasons[0]} />
                </td>
                <td class="name">
                  <a class="node-link" href={`/nodes/${encodeURIComponent(node.id)}`}>
                    {node.name}
                  </a>
                </td>
                <td class="wide">{node.profile}</td>
                <td class="wide labels">
                  {labelText(node.labels).map((l) => (
                    <span class="chip" key={l}>
                      {l}
                    </span>
                  ))}
                </td>
                <td class="seen">{ago(node.lastSeenAt, now)}</td>
              </tr>
            ))}
            <tr class="pad" style={{ height: `${(shown.length - last) * ROW}px` }} />
          </tbody>
        </table>
      </div>
    </section>
  );
}
