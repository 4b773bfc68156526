import type { EventEnvelope, EventSeverity } from '@muster/proto';
import { useMemo, useState } from 'preact/hooks';
import { useCan } from '../access.js';
import { api, message } from '../api.js';
import { type FleetModel, useModel } from '../model.js';
import { EventRow } from './event-line.js';

const SEVERITIES: EventSeverity[] = ['info', 'warning', 'critical'];
const KIND_GROUPS = [
  { value: '', label: 'every kind' },
  { value: 'operator', label: 'notes and incidents' },
  { value: 'node.', label: 'node changes' },
  { value: 'node.status_changed', label: 'status changes' },
  { value: 'token.', label: 'tokens' },
  { value: 'security.', label: 'security' },
];
const OPERATOR_KINDS = new Set(['note', 'incident', 'ack', 'resolve', 'tag']);
/** Rows drawn at once; the feed keeps more in memory and shows the newest. */
const SHOWN = 100;

function kindMatches(kind: string, filter: string): boolean {
  if (filter === '') return true;
  if (filter === 'operator') return OPERATOR_KINDS.has(kind);
  return filter.endsWith('.') ? kind.startsWith(filter) : kind === filter;
}

/** The live feed, with forms to write a note and to open, acknowledge and resolve incidents. */
export function EventsView({ model }: { model: FleetModel }) {
  useModel(model);
  const can = useCan();
  const [kind, setKind] = useState('');
  const [severities, setSeverities] = useState<Set<EventSeverity>>(new Set(SEVERITIES));
  const events = model.events;
  const last = events.at(-1)?.id;

  const incidents = useMemo(() => {
    const state = new Map<number, 'open' | 'acknowledged' | 'resolved'>();
    for (const e of events) {
      const ref = (e.data as { ref?: number }).ref;
      if (e.kind === 'incident') state.set(e.id, state.get(e.id) ?? 'open');
      else if (e.kind === 'ack' && ref !== undefined && state.get(ref) === 'open')
        state.set(ref, 'acknowledged');
      else if (e.kind === 'resolve' && ref !== undefined) state.set(ref, 'resolved');
    }
    return state;
  }, [events.length, last]);

  const shown: EventEnvelope[] = [];
  for (let i = events.length - 1; i >= 0 && shown.length < SHOWN; i--) {
    const e = events[i]!;
    if (severities.has(e.severity) && kindMatches(e.kind, kind)) shown.push(e);
  }

  const answer = (ref: number, what: 'ack' | 'resolve') => api('POST', '/v1/events', { kind: what, ref });

  return (
    <section class="events-view" aria-labelledby="events-title">
      <div class="toolbar">
        <h1 id="events-title">Events</h1>
        <form class="filters" aria-label="Filter events" onSubmit={(e) => e.preventDefault()}>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
              {KIND_GROUPS.map((k) => (
                <option key={k.value} value={k.value}>
                  {k.label}
                </option>
              ))}
            </select>
          </label>
          <fieldset>
            <legend>Severity</legend>
            {SEVERITIES.map((s) => (
              <label key={s} class="check">
                <input
                  type="checkbox"
                  checked={severities.has(s)}
                  onChange={(e) => {
                    const next = new Set(severities);
                    if ((e.target as HTMLInputElement).checked) next.add(s);
                    else next.delete(s);
                    setSeverities(next);
                  }}
                />
                {s}
              </label>
            ))}
          </fieldset>
        </form>
      </div>
      <div class="split">
        {can.some('create', 'events') && <WriteForm model={model} />}
        <ol class="events feed" aria-label="Event feed, newest first">
          {shown.map((e) => (
            <EventRow
              key={e.id}
              event={e}
              names={model.names}
              actions={
                e.kind === 'incident' ? (
                  <IncidentActions
                    id={e.id}
                    state={incidents.get(e.id) ?? 'open'}
                    answer={can.some('create', 'events') ? answer : undefined}
                  />
                ) : undefined
              }
            />
          ))}
          {shown.length === 0 && <li class="muted">No events match.</li>}
        </ol>
      </div>
    </section>
  );
}

function IncidentActions({
  id,
  state,
  answer,
}: {
  id: number;
  state: string;
  /** Absent when the role may not answer incidents: the state is shown, no buttons. */
  answer: ((ref: number, what: 'ack' | 'resolve') => Promise<unknown>) | undefined;
}) {
  const [error, setError] = useState<string | undefined>();
  const run = (what: 'ack' | 'resolve') =>
    answer?.(id, what).then(
      () => setError(undefined),
      (err) => setError(message(err)),
    );
  return (
    <span class="actions">
      <span class={`incident incident-${state}`}>{state}</span>
      {answer && state === 'open' && (
        <button type="button" class="small" onClick={() => run('ack')}>
          Acknowledge
        </button>
      )}
      {answer && state !== 'resolved' && (
        <button type="button" class="small" onClick={() => run('resolve')}>
          Resolve
        </button>
      )}
      {error && <span class="error">{error}</span>}
    </span>
  );
}

function WriteForm({ model }: { model: FleetModel }) {
  const [kind, setKind] = useState<'note' | 'incident'>('note');
  const [text, setText] = useState('');
  const [severity, setSeverity] = useState<EventSeverity | ''>('');
  const [node, setNode] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [done, setDone] = useState<string | undefined>();
  const nodes = model.sortedNodes();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setDone(undefined);
    try {
      const created = await api<EventEnvelope>('POST', '/v1/events', {
        kind,
        text,
        ...(severity ? { severity } : {}),
        ...(node ? { nodeId: node } : {}),
      });
      setText('');
      setDone(`${kind === 'note' ? 'Note' : 'Incident'} #${created.id} written.`);
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="card write" onSubmit={submit} aria-labelledby="write-title">
      <h2 id="write-title">Write</h2>
      <fieldset class="segmented">
        <legend class="sr-only">What to write</legend>
        {(['note', 'incident'] as const).map((k) => (
          <label key={k} class="check">
            <input type="radio" name="write-kind" checked={kind === k} onChange={() => setKind(k)} />
            {k === 'note' ? 'a note' : 'an incident'}
          </label>
        ))}
      </fieldset>
      <label for="write-text">Text</label>
      <textarea
        id="write-text"
        required
        maxLength={4096}
        rows={3}
        value={text}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
      />
      <label for="write-severity">Severity</label>
      <select
        id="write-severity"
        value={severity}
        onChange={(e) => setSeverity((e.target as HTMLSelectElement).value as EventSeverity)}
      >
        <option value="">default ({kind === 'incident' ? 'warning' : 'info'})</option>
        {SEVERITIES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      <label for="write-node">About a node</label>
      <select id="write-node" value={node} onChange={(e) => setNode((e.target as HTMLSelectElement).value)}>
        <option value="">the fleet</option>
        {nodes.slice(0, 1000).map((n) => (
          <option key={n.id} value={n.id}>
            {n.name}
          </option>
        ))}
      </select>
      <button type="submit">{kind === 'note' ? 'Write the note' : 'Open the incident'}</button>
      {done && <p role="status">{done}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
