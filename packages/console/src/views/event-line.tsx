import type { EventEnvelope } from '@muster/proto';
import type { ComponentChildren } from 'preact';

/** One event in words. Every value is text: names and notes come from nodes and people. */
export function describe(event: EventEnvelope): string {
  const d = event.data as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  switch (event.kind) {
    case 'note':
    case 'incident':
      return s(d.text);
    case 'ack':
      return `acknowledged event #${s(d.ref)}${d.text ? `: ${s(d.text)}` : ''}`;
    case 'resolve':
      return `resolved incident #${s(d.ref)}${d.text ? `: ${s(d.text)}` : ''}`;
    case 'tag':
      return `tagged ${s(d.tag)}`;
    case 'node.status_changed': {
      const reasons = Array.isArray(d.reasons) ? (d.reasons as unknown[]) : [];
      return `${s(d.name)}: ${s(d.from)} → ${s(d.to)}${reasons.length ? ` (${s(reasons[0])})` : ''}`;
    }
    case 'node.enrolled':
      return `${s(d.name)} enrolled${d.profile ? ` as ${s(d.profile)}` : ''}`;
    case 'node.decommissioned':
      return `${s(d.name)} decommissioned`;
    default: {
      const name = d.name ?? d.subject;
      return name === undefined ? '' : s(name);
    }
  }
}

export function EventRow({ event, actions }: { event: EventEnvelope; actions?: ComponentChildren }) {
  return (
    <li class={`event sev-${event.severity}`} data-event-id={event.id} data-kind={event.kind}>
      <time dateTime={event.ts}>{new Date(event.ts).toLocaleTimeString()}</time>
      <span class={`sev sev-${event.severity}`}>{event.severity}</span>
      <span class="kind">{event.kind}</span>
      <span class="text">{describe(event)}</span>
      <span class="actor muted">{event.actor}</span>
      {actions}
    </li>
  );
}
