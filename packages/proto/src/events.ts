import { type Static, Type } from '@sinclair/typebox';

/**
 * Events: what happened in the fleet, as operators watch it (`GET /v1/events`, the SSE stream,
 * `muster events`). Decisions become events in the transaction that makes them; operators write
 * notes, incidents, acknowledgements, resolutions and tags themselves.
 */
export const EVENT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type EventSeverity = (typeof EVENT_SEVERITIES)[number];

/** The kinds an operator may write with `POST /v1/events`. */
export const OPERATOR_EVENT_KINDS = ['note', 'incident', 'ack', 'resolve', 'tag'] as const;
export type OperatorEventKind = (typeof OPERATOR_EVENT_KINDS)[number];

/**
 * Every kind of event the control plane writes: its decisions (each also a ledger entry), the
 * status changes it announces, and the operators' own kinds. `muster events --kind` checks names
 * against it; a server test keeps it in step with the kinds the server records.
 */
export const EVENT_KINDS = [
  'access.denied',
  'apitoken.created',
  'apitoken.revoked',
  'ca.rotation_finished',
  'ca.rotation_started',
  'command.answered',
  'command.approved',
  'command.delivered',
  'command.expired',
  'command.issued',
  'command.running',
  'enrollment.expired',
  'enrollment.rejected',
  'enrollment.requested',
  'node.certificate_activated',
  'node.decommissioned',
  'node.enrolled',
  'node.renewed',
  'node.rotation_requested',
  'node.status_changed',
  'operator.added',
  'policy.pushed',
  'role.applied',
  'security.duplicate_channel',
  'security.name_takeover_refused',
  'security.superseded_certificate_used',
  'token.created',
  'token.revoked',
  'user.added',
  'user.certificate_issued',
  'user.disabled',
  'user.email_changed',
  'user.enabled',
  'user.link_issued',
  'user.login_code_issued',
  'user.role_changed',
  'node.certificate_recovered',
  'user.certificates_revoked',
  'job.submitted',
  'job.placed',
  'job.stopped',
  ...OPERATOR_EVENT_KINDS,
] as const;

/** Longest operator text, in characters. */
export const MAX_EVENT_TEXT = 4096;
export const MAX_EVENT_TAG = 64;
export const EVENT_TAG_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$';

export const EventSeverity = Type.Union(EVENT_SEVERITIES.map((s) => Type.Literal(s)));

/** One event. `id` grows monotonically; `ts` is RFC 3339. */
export const EventEnvelope = Type.Object({
  id: Type.Integer(),
  ts: Type.String(),
  kind: Type.String(),
  nodeId: Type.Optional(Type.String()),
  actor: Type.String(),
  severity: EventSeverity,
  data: Type.Record(Type.String(), Type.Unknown()),
});
export type EventEnvelope = Static<typeof EventEnvelope>;

/** Newest first; `nextCursor` continues further back in time. */
export const EventList = Type.Object({
  items: Type.Array(EventEnvelope),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type EventList = Static<typeof EventList>;

/**
 * An operator's event. `text` is required for `note` and `incident`; `ref` names the event an
 * `ack` or `resolve` answers (a `resolve` answers an incident); `tag` is required for `tag`.
 */
export const EventCreateRequest = Type.Object(
  {
    kind: Type.Union(OPERATOR_EVENT_KINDS.map((k) => Type.Literal(k))),
    text: Type.Optional(Type.String({ maxLength: MAX_EVENT_TEXT })),
    nodeId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    severity: Type.Optional(EventSeverity),
    ref: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    tag: Type.Optional(Type.String({ pattern: EVENT_TAG_PATTERN })),
  },
  { additionalProperties: false },
);
export type EventCreateRequest = Static<typeof EventCreateRequest>;

/** The SSE event that says history was lost to retention before the stream continues. */
export interface EventGap {
  /** The first id the client asked for that no longer exists. */
  lostFrom: number;
  /** The last id removed by retention; the stream continues after it. */
  lostThrough: number;
}
