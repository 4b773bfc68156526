import { createHash } from 'node:crypto';
import type { Labels, TokenCreated, TokenCreateRequest, TokenView } from '@muster/proto';
import { isNodeName } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { NotFoundError, UnprocessableError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { Schema, TokensTable } from '../../store/schema.js';

export const DEFAULT_TOKEN_TTL_SEC = 3600;
export const DEFAULT_PROFILE = 'default';

/** Only the hash of a join token is ever stored. */
export function hashTokenSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface TokenServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  /** The pin join lines carry: the root behind the server's certificate, which a rotation changes at its finish. */
  caPin: () => string;
  /** `sha256:…` of the fleet root key: join lines carry it so agents pin the root that signs policies. */
  rootPin?: string;
  /** The agent-plane URL join lines carry. */
  publicUrl: () => string;
}

/**
 * The `muster agent` line a host runs to enroll. The token goes in on stdin through `printf`, a
 * shell builtin, so it is never in any process's argv: a `--token` argument would sit in `ps`
 * for every local user to read for as long as the agent runs. Token, pins and URL hold no
 * character the single quotes or the shell would change.
 */
export function joinLine(join: {
  server: string;
  caPin: string;
  rootPin?: string;
  secret: string;
  name?: string;
}): string {
  return [
    `printf '%s' '${join.secret}' |`,
    'muster agent',
    `--server ${join.server}`,
    `--ca-pin ${join.caPin}`,
    ...(join.rootPin ? [`--root-pin ${join.rootPin}`] : []),
    '--token-file -',
    ...(join.name ? [`--name ${join.name}`] : []),
  ].join(' ');
}

/** Join tokens: one-time (by default), expiring secrets that let a host enroll. */
export class TokenService {
  constructor(private readonly deps: TokenServiceDeps) {}

  async create(input: TokenCreateRequest, actor: string): Promise<TokenCreated> {
    if (input.name !== undefined && !isNodeName(input.name)) {
      throw new UnprocessableError('name must be 1-63 lowercase letters, digits or dashes', 'bad_name');
    }
    const { write, clock, ids, decisions } = this.deps;
    const now = clock.now();
    const secret = ids.tokenSecret();
    const row: TokensTable = {
      id: ids.tokenId(),
      secret_hash: hashTokenSecret(secret),
      name: input.name ?? null,
      profile: input.profile ?? DEFAULT_PROFILE,
      labels: JSON.stringify(input.labels ?? {}),
      uses_total: input.uses ?? 1,
      uses_left: input.uses ?? 1,
      created_at: now,
      expires_at: now + (input.ttlSec ?? DEFAULT_TOKEN_TTL_SEC) * 1000,
      revoked_at: null,
      created_by: actor,
    };
    await write(async (trx) => {
      await trx.insertInto('tokens').values(row).execute();
      await decisions.record(trx, {
        kind: 'token.created',
        actor,
        subject: `token:${row.id}`,
        data: {
          profile: row.profile,
          labels: JSON.parse(row.labels),
          uses: row.uses_total,
          expiresAt: row.expires_at,
          name: row.name,
        },
      });
    });
    const command = joinLine({
      server: this.deps.publicUrl(),
      caPin: this.deps.caPin(),
      ...(this.deps.rootPin ? { rootPin: this.deps.rootPin } : {}),
      secret,
      ...(row.name ? { name: row.name } : {}),
    });
    return { ...tokenView(row, now), secret, caPin: this.deps.caPin(), agentCommand: command };
  }

  async list(): Promise<TokenView[]> {
    const now = this.deps.clock.now();
    const rows = await this.deps.db.selectFrom('tokens').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map((row) => tokenView(row, now));
  }

  /** Revokes a token; revoking one that is already revoked is not an error. */
  async revoke(id: string, actor: string): Promise<void> {
    const { write, clock, decisions } = this.deps;
    await write(async (trx) => {
      const row = await trx
        .selectFrom('tokens')
        .select(['id', 'revoked_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new NotFoundError(`no join token with id ${id}`);
      if (row.revoked_at !== null) return;
      await trx.updateTable('tokens').set({ revoked_at: clock.now() }).where('id', '=', id).execute();
      await decisions.record(trx, { kind: 'token.revoked', actor, subject: `token:${id}`, data: {} });
    });
  }
}

export function tokenView(row: TokensTable, now: number): TokenView {
  const state =
    row.revoked_at !== null
      ? 'revoked'
      : row.uses_left <= 0
        ? 'used'
        : row.expires_at <= now
          ? 'expired'
          : 'active';
  return {
    id: row.id,
    name: row.name,
    profile: row.profile,
    labels: JSON.parse(row.labels) as Labels,
    usesTotal: row.uses_total,
    usesLeft: row.uses_left,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
    state,
  };
}
