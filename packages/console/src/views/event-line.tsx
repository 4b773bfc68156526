import type { EventEnvelope } from '@muster/proto';
import type { ComponentChildren } from 'preact';
import type { Names } from '../names.js';
import { Kind, Ref, When } from './ref.js';

/** Part of an event's words: text, or a reference drawn as a name linked to its page. */
type Part = string | { ref: string; hint?: string };

const s = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
const plural = (n: unknown, one: string) => `${s(n)} ${one}${n === 1 ? '' : 's'}`;

/** One event in words. Every value is text: names and notes come from nodes and people. */
export function describe(event: EventEnvelope): Part[] {
  const d = event.data as Record<string, unknown>;
  const name = typeof d.name === 'string' ? d.name : undefined;
  const node: Part | undefined =
    event.nodeId !== undefined ? { ref: `node:${event.nodeId}`, ...(name ? { hint: name } : {}) } : undefined;
  const about = (rest: string): Part[] => (node ? [node, rest ? `: ${rest}` : ''] : [rest]);
  const command = (id: unknown): Part => ({ ref: `command:${s(id)}` });
  const subject = typeof d.subject === 'string' ? d.subject : undefined;
  switch (event.kind) {
    case 'note':
    case 'incident':
      return about(s(d.text));
    case 'ack':
      return [`acknowledged event #${s(d.ref)}${d.text ? `: ${s(d.text)}` : ''}`];
    case 'resolve':
      return [`resolved incident #${s(d.ref)}${d.text ? `: ${s(d.text)}` : ''}`];
    case 'tag':
      return about(`tagged ${s(d.tag)}`);
    case 'node.status_changed': {
      const reasons = Array.isArray(d.reasons) ? (d.reasons as unknown[]) : [];
      return about(`${s(d.from)} → ${s(d.to)}${reasons.length ? ` (${s(reasons[0])})` : ''}`);
    }
    case 'node.enrolled':
      return node ? [node, ` enrolled${d.profile ? ` as ${s(d.profile)}` : ''}`] : [];
    case 'node.decommissioned':
      return node ? [node, ' decommissioned'] : [];
    case 'security.duplicate_channel':
      return about('a second channel opened with this identity; the older one was closed');
    case 'security.superseded_certificate_used':
      return about(`a replaced certificate (serial ${s(d.serial)}) was presented again`);
    case 'command.issued':
      return [
        command(subject?.slice('command:'.length)),
        ` issued by ${s(d.operator)} to ${plural(d.targetCount, 'node')}`,
      ];
    case 'command.delivered':
      return [command(subject?.slice('command:'.length)), ` delivered to ${plural(d.count, 'node')}`];
    case 'command.running':
      return [
        command(d.commandId),
        node ? ' running on ' : ` running on ${plural(d.count, 'node')}`,
        ...(node ? [node] : []),
      ];
    case 'command.answered':
      return [command(d.commandId), ` answered by ${plural(d.count, 'node')}${answerSummary(d.answers)}`];
    case 'command.expired':
      return [
        command(d.commandId),
        ' expired',
        ...(node ? [' on ', node] : []),
        d.reason ? `: ${s(d.reason)}` : '',
      ];
    default:
      if (node) return [node];
      return subject ? [{ ref: subject }] : name ? [name] : [];
  }
}

/** `: 1 succeeded, 1 failed` from the answers a `command.answered` lists. */
function answerSummary(answers: unknown): string {
  if (!Array.isArray(answers)) return '';
  const counts = new Map<string, number>();
  for (const a of answers as Array<{ status?: unknown }>) {
    const status = s(a.status).replace('_', ' ');
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  return counts.size === 0 ? '' : `: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`;
}

export function EventRow({
  event,
  names,
  actions,
}: {
  event: EventEnvelope;
  names: Names;
  actions?: ComponentChildren;
}) {
  return (
    <li class={`event sev-${event.severity}`} data-event-id={event.id} data-kind={event.kind}>
      <When iso={event.ts} stacked />
      <span class={`sev sev-${event.severity}`}>{event.severity}</span>
      <Kind kind={event.kind} />
      <span class="text">
        {describe(event).map((p, i) =>
          typeof p === 'string' ? p : <Ref key={i} names={names} of={p.ref} hint={p.hint} />,
        )}
      </span>
      <span class="actor muted">
        <Ref names={names} of={event.actor} />
      </span>
      {actions}
    </li>
  );
}
