import type { Generated } from 'kysely';

/** Times are milliseconds since the epoch; JSON columns hold text in both dialects. */
export interface TokensTable {
  id: string;
  secret_hash: string;
  name: string | null;
  profile: string;
  labels: string;
  uses_total: number;
  uses_left: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  created_by: string;
}

export interface NodesTable {
  id: string;
  name: string;
  profile: string;
  labels: string;
  facts: string;
  token_id: string;
  enrolled_at: number;
  last_seen_at: number | null;
  latest: string | null;
  cert_serial: string;
  cert_not_after: number;
  cert_pem: string;
  decommissioned_at: number | null;
  /** A renewed certificate not used yet; it becomes current at its first use. */
  pending_serial: string | null;
  pending_not_after: number | null;
  pending_pem: string | null;
  /** Set by `muster nodes rotate`: the node must renew with a fresh key. */
  rekey_requested_at: number | null;
  /** The status last announced as an event (debounced), and since when. */
  status_recorded: string | null;
  status_recorded_at: number | null;
}

export interface CertificatesTable {
  serial: string;
  node_id: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  revoked_at: number | null;
  /** When a renewed certificate replaced this one. */
  superseded_at: number | null;
  /** When this superseded certificate was last presented again (a security event). */
  reuse_seen_at: number | null;
}

export interface DecisionsTable {
  seq: Generated<number>;
  ts: number;
  kind: string;
  actor: string;
  subject: string;
  data: string;
}

/** The log's size: the one row every ledger append updates, which serializes appenders. */
export interface LedgerHeadTable {
  id: number;
  size: number;
}

export interface LedgerEntriesTable {
  seq: number;
  ts: number;
  kind: string;
  subject: string;
  /** The exact RFC 8785 text that was hashed into the leaf. */
  entry: string;
}

/** The hash of every complete subtree: 2^level leaves from idx·2^level. */
export interface LedgerNodesTable {
  level: number;
  idx: number;
  hash: string;
}

export interface LedgerCheckpointsTable {
  size: number;
  ts: number;
  /** The signed note, as served. */
  note: string;
}

/** What happened in the fleet; `id` grows monotonically and is the stream's sequence. */
export interface EventsTable {
  id: Generated<number>;
  ts: number;
  kind: string;
  node_id: string | null;
  actor: string;
  severity: string;
  /** JSON. */
  data: string;
}

/**
 * One row: every event insert updates it first, which serializes event writers so ids commit
 * in order; `pruned_through` is the last id retention removed, so a gap is known exactly.
 */
export interface EventHeadTable {
  id: number;
  pruned_through: number;
}

/** Raw telemetry points, kept for the short raw window. */
export interface TelemetryRawTable {
  node_id: string;
  ts: number;
  cpu_pct: number;
  load1: number;
  mem_used_pct: number;
  disk_used_pct: number;
}

/** A rollup bucket (a minute or an hour) per node: sums for averages, maxima for peaks. */
export interface TelemetryRollupTable {
  node_id: string;
  bucket: number;
  samples: number;
  cpu_sum: number;
  cpu_max: number;
  load1_sum: number;
  mem_sum: number;
  disk_max: number;
}

/** Root-signed command policies, newest version in force. */
export interface PoliciesTable {
  version: number;
  /** The signed policy `{policy, signature}` as pushed. */
  document: string;
  created_at: number;
  actor: string;
}

/** Operators registered by `muster operator add`; they run commands once a signed policy lists them. */
export interface OperatorsTable {
  name: string;
  public_key: string;
  profiles: string;
  created_at: number;
  /** The user whose key this is; null for keys registered before keys belonged to users. */
  user: string | null;
}

export interface CommandsTable {
  id: string;
  nonce: string;
  operator: string;
  action: string;
  /** The signed command `{command, signature}` exactly as the operator sent it. */
  signed: string;
  issued_at: number;
  expires_at: number;
  created_at: number;
  /** Dual control: the distinct operators' signatures the action needs, and how many it has. */
  approvals_required: Generated<number>;
  signer_count: Generated<number>;
}

/** Each operator's signature on a command, one per key. */
export interface CommandSignaturesTable {
  command_id: string;
  public_key: string;
  operator: string;
  user: string | null;
  signature: string;
  signed_at: number;
  actor: string;
}

/** One row per node a command was resolved to: where it stands there, and the node's receipt. */
export interface CommandTargetsTable {
  command_id: string;
  node_id: string;
  state: string;
  reason: string | null;
  receipt: string | null;
  expires_at: number;
  updated_at: number;
}

/**
 * The fleet CA's rotation, one row (id 1) shared by every replica: `overlap` from
 * `muster ca rotate` until `muster ca finish`, when both roots are trusted and the new one
 * issues. The keys stay in the data dir; only the certificates are kept here.
 */
export interface CaRotationTable {
  id: number;
  state: 'none' | 'overlap' | 'finished';
  /** The root being (or last) retired. */
  old_serial: string | null;
  old_pem: string | null;
  /** The root that issues from the start of the overlap. */
  new_serial: string | null;
  new_pem: string | null;
  started_at: number | null;
  finished_at: number | null;
}

/** A console sign-in: only the SHA-256 of the cookie's secret is kept. */
export interface ConsoleSessionsTable {
  id_hash: string;
  created_at: number;
  expires_at: number;
  /** The user signed in, and the credential they signed in with (an API token's id). */
  user: string;
  credential: string;
}

/** A one-time sign-in link's code (hashed), as `muster server` and `muster demo` print it. */
export interface ConsoleSigninCodesTable {
  code_hash: string;
  expires_at: number;
  used_at: number | null;
  /** The user the link signs in. */
  user: string;
}

/** A person or a robot user of the admin plane. */
export interface UsersTable {
  name: string;
  role: string;
  disabled_at: number | null;
  created_at: number;
  created_by: string;
  /** Lowercased; single sign-on matches the user by it. */
  email: string | null;
}

/** A sign-in under way at the identity provider: one per `state`, used once. */
export interface SsoLoginsTable {
  state_hash: string;
  /** The hash of the cookie that ties the sign-in to the browser that started it. */
  browser_hash: string;
  nonce: string;
  code_verifier: string;
  expires_at: number;
  used_at: number | null;
}

/** A custom role; `spec` is its JSON ({name, allow, deny}). */
export interface RolesTable {
  name: string;
  spec: string;
  updated_at: number;
}

/** An API token of a user; only the secret's hash is stored. `role` null: the user's own. */
export interface ApiTokensTable {
  id: string;
  user: string;
  name: string | null;
  role: string | null;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** A host's request to enroll without a token (`muster agent --request`), or a signed request file. */
export interface NodeRequestsTable {
  id: string;
  name: string;
  /** `sha256:` of the requesting key's SubjectPublicKeyInfo. */
  fingerprint: string;
  csr: string;
  profile: string | null;
  labels: string;
  facts: string;
  /** The source address it came from; `offline` for a request file signed by hand. */
  source: string;
  /** pending, approved, rejected or expired. */
  status: string;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  node_id: string | null;
  cert_pem: string | null;
  not_after: number | null;
}

/** A one-time code for a user's first `muster login` (hashed). */
export interface LoginCodesTable {
  code_hash: string;
  user: string;
  created_at: number;
  created_by: string;
  expires_at: number;
  used_at: number | null;
}

/** A personal client certificate issued to a user by `muster login`. */
export interface UserCertificatesTable {
  serial: string;
  user: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  /** The certificate this one renewed, superseded at this one's first use. */
  renewed_from: string | null;
  first_used_at: number | null;
  superseded_at: number | null;
  revoked_at: number | null;
}

/** A signed job: where it stands, and the ledger entry that placed it. */
export interface JobsTable {
  id: string;
  nonce: string;
  operator: string;
  action: string;
  signed: string;
  state: string;
  approvals_required: number;
  signer_count: number;
  placed_seq: number | null;
  issued_at: number;
  expires_at: number;
  created_at: number;
  stopped_at: number | null;
}

/** One shard of a job: the node it runs on now, and how it answered. */
export interface JobShardsTable {
  job_id: string;
  shard: number;
  node_id: string;
  state: string;
  attempt: number;
  reason: string | null;
  receipt: string | null;
  updated_at: number;
}

/** A nonce of a signed agent request, refused again until it expires (CONTRACT section 12). */
export interface RequestNoncesTable {
  nonce: string;
  serial: string;
  expires_at: number;
}

export interface Schema {
  users: UsersTable;
  sso_logins: SsoLoginsTable;
  request_nonces: RequestNoncesTable;
  roles: RolesTable;
  api_tokens: ApiTokensTable;
  policies: PoliciesTable;
  operators: OperatorsTable;
  commands: CommandsTable;
  command_targets: CommandTargetsTable;
  command_signatures: CommandSignaturesTable;
  tokens: TokensTable;
  nodes: NodesTable;
  certificates: CertificatesTable;
  decisions: DecisionsTable;
  ledger_head: LedgerHeadTable;
  ledger_entries: LedgerEntriesTable;
  ledger_nodes: LedgerNodesTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  telemetry_raw: TelemetryRawTable;
  telemetry_minute: TelemetryRollupTable;
  telemetry_hour: TelemetryRollupTable;
  events: EventsTable;
  event_head: EventHeadTable;
  ca_rotation: CaRotationTable;
  console_sessions: ConsoleSessionsTable;
  console_signin_codes: ConsoleSigninCodesTable;
  node_requests: NodeRequestsTable;
  login_codes: LoginCodesTable;
  user_certificates: UserCertificatesTable;
  jobs: JobsTable;
  job_shards: JobShardsTable;
  rate_buckets: RateBucketsTable;
}

/** A token bucket the replicas share: `tokens` as of `at`, full again at `full_at`. */
export interface RateBucketsTable {
  scope: string;
  key: string;
  tokens: number;
  at: number;
  full_at: number;
  /** 1 when the last take was granted (the statement that takes says so in its RETURNING). */
  granted: number;
}
