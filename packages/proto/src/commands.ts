import { type Static, Type } from '@sinclair/typebox';
import { USER_NAME_PATTERN } from './access.js';
import { KeyedRecord } from './closed.js';
import { PROFILE_PATTERN } from './names.js';
import { Labels, Profile } from './wire.js';

/**
 * Signed commands (CONTRACT section 5): the fleet root signs the policy, operators sign
 * commands, nodes sign receipts. These are the wire shapes; signing and checking live in
 * signatures.ts and policy.ts, shared by the server, the agent and the CLI.
 */

/** `ed25519:<base64 of the 32 raw bytes>`: operator and fleet root public keys. */
export const PUBLIC_KEY_PATTERN = '^ed25519:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$';
export const OPERATOR_NAME_PATTERN = '^[a-z0-9]([a-z0-9._@-]{0,62}[a-z0-9])?$';
export const ACTION_NAME_PATTERN = '^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$';
export const ARG_NAME_PATTERN = '^[a-z][a-z0-9_]{0,31}$';
export const COMMAND_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$';

/** Longest a command may live: bounds how long an agent keeps its nonce on disk. */
export const MAX_COMMAND_LIFETIME_MS = 24 * 3_600_000;
/**
 * The per-stream output cap a policy may ask for. A receipt must fit one channel message and one
 * request body (1 MiB) even when every byte of both tails is a control character JSON escapes
 * into six: 2 × 64 KiB × 6 = 768 KiB.
 */
export const MAX_OUTPUT_BYTES = 64 * 1024;
/** The most signatures an action may ask for (and a command may carry). */
export const MAX_APPROVALS = 16;
/** Arguments are this long at most unless the policy says otherwise. */
export const DEFAULT_ARG_MAX_LENGTH = 256;

const PublicKey = Type.String({ pattern: PUBLIC_KEY_PATTERN });
const Timestamp = Type.String({ format: 'date-time', maxLength: 40 });

export const ArgConstraint = Type.Object(
  {
    /** A regular expression the whole value must match. */
    pattern: Type.String({ minLength: 1, maxLength: 1024 }),
    maxLength: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  },
  { additionalProperties: false },
);
export type ArgConstraint = Static<typeof ArgConstraint>;

export const ActionSpec = Type.Object(
  {
    /** The program and its arguments; `{name}` is replaced by the argument `name`. */
    argv: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { minItems: 1, maxItems: 64 }),
    args: Type.Optional(KeyedRecord(ARG_NAME_PATTERN, ArgConstraint, { maxProperties: 32 })),
    timeoutSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
    maxOutputBytes: Type.Integer({ minimum: 0, maximum: MAX_OUTPUT_BYTES }),
    /** Run `argv` joined by spaces with /bin/sh -c. Off unless the policy says so. */
    shell: Type.Optional(Type.Boolean()),
    /**
     * Dual control: how many distinct operators (counted by public key) must sign a command for
     * this action. A policy without it means 1.
     */
    approvals: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_APPROVALS })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type ActionSpec = Static<typeof ActionSpec>;

export const PolicyOperator = Type.Object(
  {
    name: Type.String({ pattern: OPERATOR_NAME_PATTERN }),
    publicKey: PublicKey,
    /** The profiles this operator may run commands on; `*` is every profile. */
    profiles: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
  },
  { additionalProperties: false },
);
export type PolicyOperator = Static<typeof PolicyOperator>;

export const Policy = Type.Object(
  {
    version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    operators: Type.Array(PolicyOperator, { maxItems: 1024 }),
    // Keyed by profile names as nodes carry them: any other key could never apply to a node.
    profiles: KeyedRecord(
      PROFILE_PATTERN,
      Type.Object(
        { actions: KeyedRecord(ACTION_NAME_PATTERN, ActionSpec, { maxProperties: 256 }) },
        { additionalProperties: false },
      ),
      { maxProperties: 256 },
    ),
  },
  { additionalProperties: false },
);
export type Policy = Static<typeof Policy>;

/** A policy and the fleet root's Ed25519 signature over `muster-policy-v1\n` + JCS(policy). */
export const SignedPolicy = Type.Object(
  { policy: Policy, signature: Type.String({ maxLength: 128 }) },
  { additionalProperties: false },
);
export type SignedPolicy = Static<typeof SignedPolicy>;

export const CommandTarget = Type.Union([
  Type.Object(
    { nodes: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10_000 }) },
    { additionalProperties: false },
  ),
  Type.Object({ labels: Labels }, { additionalProperties: false }),
  Type.Object({ profile: Profile }, { additionalProperties: false }),
  Type.Object({ all: Type.Literal(true) }, { additionalProperties: false }),
]);
export type CommandTarget = Static<typeof CommandTarget>;

/**
 * The fields every operator-signed request opens with (a command, a job, later a rollout): who
 * signed it, when, until when, and a nonce an agent remembers so it runs at most once.
 */
export const SIGNED_REQUEST_FIELDS = {
  v: Type.Literal(1),
  id: Type.String({ pattern: COMMAND_ID_PATTERN }),
  nonce: Type.String({ pattern: '^[A-Za-z0-9+/=_-]{16,128}$' }),
  issuedAt: Timestamp,
  expiresAt: Timestamp,
  operator: Type.String({ pattern: OPERATOR_NAME_PATTERN }),
};

export const Command = Type.Object(
  {
    ...SIGNED_REQUEST_FIELDS,
    target: CommandTarget,
    action: Type.String({ pattern: ACTION_NAME_PATTERN }),
    args: KeyedRecord(ARG_NAME_PATTERN, Type.String({ maxLength: 4096 }), { maxProperties: 32 }),
  },
  { additionalProperties: false },
);
export type Command = Static<typeof Command>;

/** One operator's Ed25519 signature over a command (dual control gathers several). */
export const CommandSignature = Type.Object(
  { operator: Type.String({ pattern: OPERATOR_NAME_PATTERN }), signature: Type.String({ maxLength: 128 }) },
  { additionalProperties: false },
);
export type CommandSignature = Static<typeof CommandSignature>;

/**
 * `POST /v1/commands`: a command and its operator's Ed25519 signature (`signature`), or the
 * signatures of several operators (`signatures`) when the policy asks for approvals.
 */
export const SignedCommand = Type.Union([
  Type.Object(
    { command: Command, signature: Type.String({ maxLength: 128 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      command: Command,
      signatures: Type.Array(CommandSignature, { minItems: 1, maxItems: MAX_APPROVALS }),
    },
    { additionalProperties: false },
  ),
]);
export type SignedCommand = Static<typeof SignedCommand>;

/** Every signature a signed command carries, a lone `signature` being its operator's. */
export function signaturesOf(signed: SignedCommand): CommandSignature[] {
  return 'signatures' in signed
    ? signed.signatures
    : [{ operator: signed.command.operator, signature: signed.signature }];
}

/** The wire form for these signatures: one stays `{command, signature}`, as agents before dual control read it. */
export function withSignatures(command: Command, signatures: readonly CommandSignature[]): SignedCommand {
  const [only] = signatures;
  return signatures.length === 1 && only!.operator === command.operator
    ? { command, signature: only!.signature }
    : { command, signatures: signatures.map(({ operator, signature }) => ({ operator, signature })) };
}

export const RECEIPT_STATUSES = ['succeeded', 'failed', 'timed_out', 'rejected', 'interrupted'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];

/** A node's answer, signed with its identity key (ECDSA, DER) over `muster-receipt-v1\n` + JCS. */
export const Receipt = Type.Object(
  {
    commandId: Type.String({ pattern: COMMAND_ID_PATTERN }),
    nodeId: Type.String({ minLength: 1, maxLength: 128 }),
    status: Type.Union(RECEIPT_STATUSES.map((s) => Type.Literal(s))),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    exitCode: Type.Union([Type.Integer({ minimum: -1024, maximum: 1024 }), Type.Null()]),
    startedAt: Timestamp,
    finishedAt: Timestamp,
    stdoutTail: Type.String({ maxLength: MAX_OUTPUT_BYTES }),
    stderrTail: Type.String({ maxLength: MAX_OUTPUT_BYTES }),
    /** SHA-256 (hex) of everything the command wrote to stdout, capped or not. */
    outputSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    signature: Type.String({ maxLength: 256 }),
  },
  { additionalProperties: false },
);
export type Receipt = Static<typeof Receipt>;
export type UnsignedReceipt = Omit<Receipt, 'signature'>;

/** Where a command stands on one node. */
export const TARGET_STATES = [
  /** Dual control: the command waits for more operators' signatures before it goes anywhere. */
  'awaiting_approval',
  'pending',
  'delivered',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'interrupted',
  'expired',
] as const;
export type TargetState = (typeof TARGET_STATES)[number];
export const FINAL_TARGET_STATES: readonly TargetState[] = [
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'interrupted',
  'expired',
];

export const CommandTargetView = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  state: Type.Union(TARGET_STATES.map((s) => Type.Literal(s))),
  reason: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.String(),
  receipt: Type.Union([Receipt, Type.Null()]),
});
export type CommandTargetView = Static<typeof CommandTargetView>;

/** Who has signed a command, and how many signatures its action needs. */
export const CommandApprovals = Type.Object({
  required: Type.Integer(),
  signers: Type.Array(
    Type.Object({
      operator: Type.String(),
      /** The user the operator's key belongs to, when the server knows. */
      user: Type.Union([Type.String(), Type.Null()]),
      signedAt: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});
export type CommandApprovals = Static<typeof CommandApprovals>;

/** Where a command stands as a whole: waiting for signatures, gone out to its nodes, or expired waiting. */
export const COMMAND_STATES = ['awaiting_approval', 'issued', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

export const CommandView = Type.Object({
  id: Type.String(),
  operator: Type.String(),
  action: Type.String(),
  args: Type.Record(Type.String(), Type.String()),
  target: CommandTarget,
  issuedAt: Type.String(),
  expiresAt: Type.String(),
  createdAt: Type.String(),
  /** Targets per state, e.g. `{succeeded: 9, running: 1}`. */
  summary: Type.Record(Type.String(), Type.Integer()),
  state: Type.Optional(Type.Union(COMMAND_STATES.map((s) => Type.Literal(s)))),
  approvals: Type.Optional(CommandApprovals),
  /** Present on `GET /v1/commands/:id`. */
  targets: Type.Optional(Type.Array(CommandTargetView)),
  signed: Type.Optional(SignedCommand),
});
export type CommandView = Static<typeof CommandView>;

export const CommandList = Type.Object({
  items: Type.Array(CommandView),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type CommandList = Static<typeof CommandList>;

export const CommandAccepted = Type.Object({
  id: Type.String(),
  targets: Type.Array(Type.Object({ nodeId: Type.String(), name: Type.String() })),
  /** `awaiting_approval` until as many operators signed as the action needs; then `issued`. */
  state: Type.Optional(Type.Union(COMMAND_STATES.map((s) => Type.Literal(s)))),
  approvals: Type.Optional(CommandApprovals),
});
export type CommandAccepted = Static<typeof CommandAccepted>;

/** `POST /v1/operators`: an operator as a policy lists it, and the user whose key it is. */
export const OperatorCreateRequest = Type.Object(
  {
    ...PolicyOperator.properties,
    /** The user the key belongs to; omitted, the user of the same name if there is one. */
    user: Type.Optional(Type.String({ pattern: USER_NAME_PATTERN })),
  },
  { additionalProperties: false },
);
export type OperatorCreateRequest = Static<typeof OperatorCreateRequest>;

export const OperatorView = Type.Object({
  name: Type.String(),
  publicKey: Type.String(),
  profiles: Type.Array(Type.String()),
  createdAt: Type.String(),
  /** The user whose key this is; null for a key registered before keys belonged to users. */
  user: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** True once a root-signed policy carries this operator with this key: only then can it run commands. */
  inPolicy: Type.Boolean(),
});
export type OperatorView = Static<typeof OperatorView>;

/** `GET /v1/policy`: the policy in force, with the fleet root key that signed it. */
export const PolicyState = Type.Object({
  rootKey: Type.String(),
  rootFingerprint: Type.String(),
  current: Type.Union([SignedPolicy, Type.Null()]),
});
export type PolicyState = Static<typeof PolicyState>;
