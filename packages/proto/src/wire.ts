import { type Static, Type } from '@sinclair/typebox';
import { KeyedRecord } from './closed.js';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, MAX_LABELS, PROFILE_PATTERN } from './names.js';

/**
 * The wire schemas of the agent plane and the admin plane (CONTRACT section 3).
 * The server validates every request body with these, and the agent and CLI are typed by them,
 * so the two ends cannot drift apart.
 */

const MAX_BYTES = 2 ** 60; // 1 EiB: anything larger is a broken agent, not a big disk
const Bytes = Type.Integer({ minimum: 0, maximum: MAX_BYTES });
const Text = (maxLength: number) => Type.String({ maxLength });

export const Labels = KeyedRecord(LABEL_KEY_PATTERN, Type.String({ pattern: LABEL_VALUE_PATTERN }), {
  maxProperties: MAX_LABELS,
});
export type Labels = Static<typeof Labels>;

export const Profile = Type.String({ pattern: PROFILE_PATTERN });

export const Facts = Type.Object(
  {
    hostname: Text(253),
    os: Text(64),
    arch: Text(32),
    kernel: Text(256),
    cpus: Type.Integer({ minimum: 0, maximum: 65_536 }),
    memoryBytes: Bytes,
    agentVersion: Text(64),
  },
  { additionalProperties: false },
);
export type Facts = Static<typeof Facts>;

/** Names are checked by the service, not the schema, so a bad name gets its own 422 answer. */
export const EnrollRequest = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 256 }),
    csr: Type.String({ minLength: 1, maxLength: 16_384 }),
    name: Type.Optional(Type.String({ maxLength: 1024 })),
    /** A host may ask for a profile when its token leaves it open, and add labels. */
    profile: Type.Optional(Type.String({ maxLength: 128 })),
    labels: Type.Optional(Labels),
    facts: Facts,
  },
  { additionalProperties: false },
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const EnrollResponse = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  certificate: Type.String(),
  caBundle: Type.String(),
  notAfter: Type.String(),
  trust: Type.Object({
    caPin: Type.String(),
    trustDomain: Type.String(),
    /** The ledger's verifier key (C2SP vkey): agents pin it and witness checkpoints with it. */
    ledgerKey: Type.Optional(Type.String()),
    /** The fleet root public key (`ed25519:…`) that signs command policies; the join line pins it. */
    fleetRoot: Type.Optional(Type.String()),
  }),
  /** What the node was enrolled as: commands are addressed and allowed by these. */
  profile: Type.String(),
  labels: Labels,
  heartbeatIntervalSec: Type.Integer(),
});
export type EnrollResponse = Static<typeof EnrollResponse>;

export const Disk = Type.Object(
  { mount: Text(512), totalBytes: Bytes, freeBytes: Bytes },
  { additionalProperties: false },
);
/**
 * A service's state. `active` is what every agent sends; newer agents add `state`, which can say
 * `unknown` (with a `reason`) where the host cannot tell, e.g. without systemd. `active` is then
 * false: not known to run. A heartbeat without `state` means `active` or `inactive` by `active`.
 */
export const ServiceState = Type.Union([
  Type.Literal('active'),
  Type.Literal('inactive'),
  Type.Literal('unknown'),
]);
export type ServiceState = Static<typeof ServiceState>;
export const Service = Type.Object(
  {
    name: Text(256),
    active: Type.Boolean(),
    state: Type.Optional(ServiceState),
    /** Why the state is what it is, where that is not plain: always given with `unknown`. */
    reason: Type.Optional(Text(512)),
  },
  { additionalProperties: false },
);
export type Service = Static<typeof Service>;
export const Check = Type.Object(
  { name: Text(256), ok: Type.Boolean(), detail: Type.Optional(Text(1024)) },
  { additionalProperties: false },
);

export const Heartbeat = Type.Object(
  {
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    sentAt: Type.String({ format: 'date-time', maxLength: 40 }),
    uptimeSec: Type.Number({ minimum: 0, maximum: 1e10 }),
    load: Type.Array(Type.Number({ minimum: 0, maximum: 1e6 }), { minItems: 3, maxItems: 3 }),
    cpuPct: Type.Number({ minimum: 0, maximum: 100 }),
    memory: Type.Object({ totalBytes: Bytes, availableBytes: Bytes }, { additionalProperties: false }),
    disks: Type.Array(Disk, { maxItems: 64 }),
    services: Type.Array(Service, { maxItems: 128 }),
    certNotAfter: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
    checks: Type.Array(Check, { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type Heartbeat = Static<typeof Heartbeat>;

export const HeartbeatAck = Type.Object({
  nodeId: Type.String(),
  heartbeatIntervalSec: Type.Integer(),
  serverTime: Type.String(),
  /** The operator asked for a fresh key (`muster nodes rotate`): renew now, with a new key. */
  rekey: Type.Optional(Type.Boolean()),
  /** The ledger's latest signed checkpoint, for the agent to witness. */
  checkpoint: Type.Optional(Type.String({ maxLength: 4096 })),
  /** The version of the command policy in force: an agent holding an older one fetches it. */
  policyVersion: Type.Optional(Type.Integer()),
  /** Commands waiting for this node, for an agent reporting over HTTP (no channel held). */
  commands: Type.Optional(Type.Array(Type.Unknown())),
  /**
   * The fleet CA is being rotated and this node's certificate comes from the root being
   * retired: renew onto the new root at a random moment within this many seconds.
   */
  renewWithinSec: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type HeartbeatAck = Static<typeof HeartbeatAck>;

/** Renewal: a CSR for the same node, with the key it holds now or a fresh one. */
export const RenewRequest = Type.Object(
  { csr: Type.String({ minLength: 1, maxLength: 16_384 }) },
  { additionalProperties: false },
);
export type RenewRequest = Static<typeof RenewRequest>;

export const RenewResponse = Type.Object({
  certificate: Type.String(),
  notAfter: Type.String(),
  /** Every root the agent should trust from now on (more than one during a CA rotation). */
  caBundle: Type.String(),
});
export type RenewResponse = Static<typeof RenewResponse>;

/** One fleet CA certificate as operators see it. */
export const CaView = Type.Object({
  subject: Type.String(),
  serial: Type.String(),
  /** `sha256:<hex>` of its SubjectPublicKeyInfo, as join lines carry it (`--ca-pin`). */
  pin: Type.String(),
  notBefore: Type.String(),
  notAfter: Type.String(),
});
export type CaView = Static<typeof CaView>;

/**
 * `GET /v1/ca`: the fleet CA, how long it has left, and which nodes hold certificates from it.
 * `ca` is the root that issues new certificates; during a rotation that is the new root.
 */
export const CaStatus = Type.Object({
  ca: CaView,
  /** A rotation in progress (`muster ca rotate`), until `muster ca finish`; null otherwise. */
  rotation: Type.Union([
    Type.Object({
      startedAt: Type.String(),
      /** The old root: still trusted, and still behind the server's own TLS certificate. */
      retiring: CaView,
      /** Active nodes whose current certificate the retiring root issued. */
      nodesOnRetiring: Type.Integer(),
    }),
    Type.Null(),
  ]),
  nodes: Type.Object({
    active: Type.Integer(),
    /** Active nodes whose current certificate this CA issued. */
    onThisCa: Type.Integer(),
    /** Active nodes still on a certificate from another root (after a rotation). */
    onOtherCa: Type.Integer(),
  }),
  /** Sentences an operator should act on, such as the CA expiring within a year. */
  warnings: Type.Array(Type.String()),
});
export type CaStatus = Static<typeof CaStatus>;

/** `POST /v1/ca/finish`: retire the old root; `force` even while nodes still depend on it. */
export const CaFinishRequest = Type.Object(
  { force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type CaFinishRequest = Static<typeof CaFinishRequest>;

export const TokenCreateRequest = Type.Object(
  {
    ttlSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400 })),
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    profile: Type.Optional(Profile),
    labels: Type.Optional(Labels),
    name: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type TokenCreateRequest = Static<typeof TokenCreateRequest>;

export const TokenView = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  profile: Type.String(),
  labels: Labels,
  usesTotal: Type.Integer(),
  usesLeft: Type.Integer(),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([
    Type.Literal('active'),
    Type.Literal('used'),
    Type.Literal('expired'),
    Type.Literal('revoked'),
  ]),
});
export type TokenView = Static<typeof TokenView>;

export const TokenCreated = Type.Composite([
  TokenView,
  Type.Object({ secret: Type.String(), caPin: Type.String(), agentCommand: Type.String() }),
]);
export type TokenCreated = Static<typeof TokenCreated>;

export const NodeStatus = Type.Union([
  Type.Literal('ok'),
  Type.Literal('attention'),
  Type.Literal('critical'),
  Type.Literal('offline'),
  Type.Literal('decommissioned'),
]);
export type NodeStatus = Static<typeof NodeStatus>;
export const NODE_STATUSES = ['ok', 'attention', 'critical', 'offline', 'decommissioned'] as const;

export const NodeView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  profile: Type.String(),
  labels: Labels,
  status: NodeStatus,
  reasons: Type.Array(Type.String()),
  enrolledAt: Type.String(),
  lastSeenAt: Type.Union([Type.String(), Type.Null()]),
  decommissionedAt: Type.Union([Type.String(), Type.Null()]),
  facts: Facts,
  latest: Type.Union([Heartbeat, Type.Null()]),
  cert: Type.Object({
    serial: Type.String(),
    issuer: Type.String(),
    notBefore: Type.String(),
    notAfter: Type.String(),
    /** A renewed certificate the node has not used yet. */
    pending: Type.Union([Type.Object({ serial: Type.String(), notAfter: Type.String() }), Type.Null()]),
    /** When an operator asked the node to move to a fresh key, until it has. */
    rotationRequestedAt: Type.Union([Type.String(), Type.Null()]),
    pem: Type.Optional(Type.String()),
  }),
});
export type NodeView = Static<typeof NodeView>;

export const NodeList = Type.Object({
  items: Type.Array(NodeView),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type NodeList = Static<typeof NodeList>;
