import { createHash, randomBytes } from 'node:crypto';
import {
  type ApiTokenCreated,
  type ApiTokenCreateRequest,
  type ApiTokenView,
  roleAllows,
  roleWithin,
} from '@muster/proto';
import type { Logger } from 'pino';
import { ForbiddenError, NotFoundError, UnprocessableError } from '../../errors.js';
import type { Principal } from '../../identity.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { ApiTokensTable } from '../../store/schema.js';
import { BOOTSTRAP_USER, type PeopleDeps, type PeopleService, parseRole } from './people.js';
import { apiTokenOwner } from './refused-tokens.js';

/** The id of the bootstrap `admin.token` as an API token: `muster apitoken revoke bootstrap`. */
export const BOOTSTRAP_TOKEN_ID = 'bootstrap';
export const DEFAULT_API_TOKEN_TTL_SEC = 30 * 86_400;
/** Last-used times are written at most this often per token: reads must not each cost a write. */
export const LAST_USED_WRITE_MS = 60_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');
const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export function apiTokenView(row: ApiTokensTable, now: number): ApiTokenView {
  const state =
    row.revoked_at !== null
      ? 'revoked'
      : row.expires_at !== null && Number(row.expires_at) <= now
        ? 'expired'
        : 'active';
  return {
    id: row.id,
    user: row.user,
    name: row.name,
    role: row.role,
    createdAt: iso(row.created_at)!,
    expiresAt: iso(row.expires_at),
    revokedAt: iso(row.revoked_at),
    lastUsedAt: iso(row.last_used_at),
    state,
  };
}

/** API tokens and the resolution of every admin credential to a principal, from the store. */
export class CredentialService {
  private readonly lastWritten = new Map<string, number>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly deps: PeopleDeps & { people: PeopleService; traits: DialectTraits; logger?: Logger },
  ) {}

  /**
   * Makes the bootstrap `admin.token` the credential of the first admin user, once. Like the
   * token file itself, this is part of the first start, not a decision anyone took, so it is
   * not a ledger entry: the ledger's first entry stays the first thing an admin did. A later
   * start with another token file replaces its hash unless it was revoked (then it stays dead).
   */
  async ensureBootstrap(adminToken: string): Promise<void> {
    const { write, clock, traits } = this.deps;
    const secretHash = hashSecret(adminToken);
    // A read first: every later start finds it in place and writes nothing.
    const current = await this.deps.db
      .selectFrom('api_tokens')
      .select(['secret_hash', 'revoked_at'])
      .where('id', '=', BOOTSTRAP_TOKEN_ID)
      .executeTakeFirst();
    if (current && (current.revoked_at !== null || current.secret_hash === secretHash)) return;
    try {
      await write(async (trx) => {
        const row = await trx
          .selectFrom('api_tokens')
          .select(['secret_hash', 'revoked_at'])
          .where('id', '=', BOOTSTRAP_TOKEN_ID)
          .executeTakeFirst();
        if (row) {
          if (row.revoked_at === null && row.secret_hash !== secretHash)
            await trx
              .updateTable('api_tokens')
              .set({ secret_hash: secretHash })
              .where('id', '=', BOOTSTRAP_TOKEN_ID)
              .execute();
          return;
        }
        const now = clock.now();
        const user = await trx
          .selectFrom('users')
          .select('name')
          .where('name', '=', BOOTSTRAP_USER)
          .executeTakeFirst();
        if (!user) {
          await trx
            .insertInto('users')
            .values({
              name: BOOTSTRAP_USER,
              role: 'admin',
              disabled_at: null,
              created_at: now,
              created_by: 'system',
            })
            .execute();
        }
        await trx
          .insertInto('api_tokens')
          .values({
            id: BOOTSTRAP_TOKEN_ID,
            user: BOOTSTRAP_USER,
            name: 'admin.token',
            role: null,
            secret_hash: secretHash,
            created_at: now,
            expires_at: null,
            revoked_at: null,
            last_used_at: null,
          })
          .execute();
      });
    } catch (err) {
      // Another replica starting at the same moment made it first.
      if (!traits.isUniqueViolation(err)) throw err;
    }
  }

  /** The principal behind a bearer secret, or undefined when it is unknown, expired, revoked or its user disabled. */
  async byBearer(secret: string): Promise<Principal | undefined> {
    if (secret.length === 0 || secret.length > 512) return undefined;
    const row = await this.deps.db
      .selectFrom('api_tokens as t')
      .innerJoin('users as u', 'u.name', 't.user')
      .leftJoin('roles as ur', 'ur.name', 'u.role')
      .leftJoin('roles as tr', 'tr.name', 't.role')
      .select([
        't.id',
        't.user',
        't.role as tokenRole',
        't.expires_at',
        't.revoked_at',
        't.last_used_at',
        'u.role as userRole',
        'u.disabled_at',
        'ur.spec as userSpec',
        'tr.spec as tokenSpec',
      ])
      .where('t.secret_hash', '=', hashSecret(secret))
      .executeTakeFirst();
    const now = this.deps.clock.now();
    if (!row || row.revoked_at !== null || row.disabled_at !== null) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= now) return undefined;
    this.noteUse(row.id, row.last_used_at === null ? null : Number(row.last_used_at), now);
    const roles = [parseRole(row.userRole, row.userSpec)];
    if (row.tokenRole !== null) roles.push(parseRole(row.tokenRole, row.tokenSpec));
    return { user: row.user, credential: row.id, roles };
  }

  /** The user a refused bearer secret belongs to, so the refusal counts against them too. */
  async ownerOf(secret: string): Promise<string | undefined> {
    return apiTokenOwner(this.deps.db, secret);
  }

  /** The principal of a console session: its user, as long as they and the token signed in with are live. */
  async bySession(user: string, credential: string): Promise<Principal | undefined> {
    const row = await this.deps.db
      .selectFrom('users as u')
      .leftJoin('roles as ur', 'ur.name', 'u.role')
      .leftJoin('api_tokens as t', (join) => join.on('t.id', '=', credential).onRef('t.user', '=', 'u.name'))
      .leftJoin('roles as tr', 'tr.name', 't.role')
      .select([
        'u.role as userRole',
        'u.disabled_at',
        'ur.spec as userSpec',
        't.id as tokenId',
        't.role as tokenRole',
        't.expires_at',
        't.revoked_at',
        'tr.spec as tokenSpec',
      ])
      .where('u.name', '=', user)
      .executeTakeFirst();
    if (!row || row.disabled_at !== null) return undefined;
    const roles = [parseRole(row.userRole, row.userSpec)];
    if (row.tokenId !== null) {
      if (row.revoked_at !== null) return undefined;
      if (row.expires_at !== null && Number(row.expires_at) <= this.deps.clock.now()) return undefined;
      if (row.tokenRole !== null) roles.push(parseRole(row.tokenRole, row.tokenSpec));
    }
    return { user, credential, roles };
  }

  async create(input: ApiTokenCreateRequest, by: Principal, actor: string): Promise<ApiTokenCreated> {
    const { write, clock, decisions, people } = this.deps;
    const owner = input.user ?? by.user;
    if (owner !== by.user && !by.roles.every((r) => roleAllows(r, { verb: 'create', resource: 'apitokens' })))
      throw new ForbiddenError(`role ${by.roles[0]!.name} may not create apitokens for another user`);
    const now = clock.now();
    const secret = `mat_${randomBytes(32).toString('base64url')}`;
    const row: ApiTokensTable = {
      id: `atk_${randomBytes(8).toString('hex')}`,
      user: owner,
      name: input.name ?? null,
      role: input.role ?? null,
      secret_hash: hashSecret(secret),
      created_at: now,
      expires_at: now + (input.ttlSec ?? DEFAULT_API_TOKEN_TTL_SEC) * 1000,
      revoked_at: null,
      last_used_at: null,
    };
    await write(async (trx) => {
      const user = await trx.selectFrom('users').select('role').where('name', '=', owner).executeTakeFirst();
      if (!user) throw new NotFoundError(`no user named ${owner}`, 'no_user');
      const ownerRole = await people.role(trx, user.role);
      if (input.role !== undefined) {
        const wanted = await people.role(trx, input.role).catch(() => {
          throw new UnprocessableError(`no role named ${input.role}`, 'no_role');
        });
        // Never above the owner's role, nor above the creator's own: a token cannot lend power.
        for (const ceiling of [ownerRole, ...by.roles])
          if (!roleWithin(wanted, ceiling))
            throw new ForbiddenError(
              `role ${wanted.name} is above role ${ceiling.name}; an API token may not exceed it`,
            );
      }
      await trx.insertInto('api_tokens').values(row).execute();
      await decisions.record(trx, {
        kind: 'apitoken.created',
        actor,
        subject: `apitoken:${row.id}`,
        data: { user: owner, name: row.name, role: row.role, expiresAt: row.expires_at },
      });
    });
    return { ...apiTokenView(row, now), secret };
  }

  /** The caller's own tokens, or everyone's for a principal whose role reads apitokens of others. */
  async list(by: Principal, all: boolean): Promise<ApiTokenView[]> {
    let q = this.deps.db.selectFrom('api_tokens').selectAll().orderBy('created_at', 'desc');
    if (!all) q = q.where('user', '=', by.user);
    const now = this.deps.clock.now();
    return (await q.execute()).map((row) => apiTokenView(row, now));
  }

  /** Revokes a token; the caller's own, or anyone's when `anyone`. Revoking twice is not an error. */
  async revoke(id: string, by: Principal, anyone: boolean, actor: string): Promise<void> {
    const { write, clock, decisions } = this.deps;
    await write(async (trx) => {
      const row = await trx
        .selectFrom('api_tokens')
        .select(['user', 'revoked_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || (!anyone && row.user !== by.user)) throw new NotFoundError(`no API token with id ${id}`);
      if (row.revoked_at !== null) return;
      await trx.updateTable('api_tokens').set({ revoked_at: clock.now() }).where('id', '=', id).execute();
      await decisions.record(trx, {
        kind: 'apitoken.revoked',
        actor,
        subject: `apitoken:${id}`,
        data: { user: row.user },
      });
    });
  }

  /** Records a token's use, at most once a LAST_USED_WRITE_MS per token, off the request's path. */
  private noteUse(id: string, stored: number | null, now: number): void {
    const last = Math.max(stored ?? 0, this.lastWritten.get(id) ?? 0);
    if (now - last < LAST_USED_WRITE_MS) return;
    this.lastWritten.set(id, now);
    const written = this.deps
      .write((trx) => trx.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', id).execute())
      .catch((err) => this.deps.logger?.warn({ err }, 'could not record when an API token was last used'))
      .finally(() => this.pending.delete(written));
    this.pending.add(written);
  }

  /** Resolves once every last-used write started so far has finished (at shutdown, in tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
