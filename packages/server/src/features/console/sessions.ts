import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';

/** The cookie that carries a console session's secret. */
export const SESSION_COOKIE = 'muster_session';
/** The header a console session sends its CSRF token in on every state-changing call. */
export const CSRF_HEADER = 'x-muster-csrf';

export const SESSION_LIFETIME_MS = 12 * 3_600_000;
export const SIGNIN_CODE_LIFETIME_MS = 15 * 60_000;

/** A live console session, as the cookie's secret proves it. */
export interface ConsoleSession {
  /** The secret's hash: what the store keys the session by, safe to log. */
  idHash: string;
  expiresAt: number;
  /** The user signed in, and the credential they signed in with. */
  user: string;
  credential: string;
  /** The token the console must echo in `x-muster-csrf`; derived from the secret, never stored. */
  csrf: string;
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const csrfOf = (secret: string) =>
  createHash('sha256').update(`muster-csrf-v1\n${secret}`).digest('base64url');

/**
 * Console sessions: the admin token (or a one-time sign-in code) exchanged for a random secret
 * in an httpOnly cookie. Only hashes are stored, in the store every replica shares, so a session
 * made on one replica works on all of them and ends on all of them at sign-out.
 */
export class SessionService {
  constructor(
    private readonly deps: {
      db: Kysely<Schema>;
      write: Store['write'];
      clock: Clock;
      lifetimeMs?: number;
    },
  ) {}

  /** A new session; the secret goes into the cookie and is never seen again here. */
  async create(user: string, credential: string): Promise<ConsoleSession & { secret: string }> {
    const { write, clock } = this.deps;
    const now = clock.now();
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = now + (this.deps.lifetimeMs ?? SESSION_LIFETIME_MS);
    await write(async (trx) => {
      // Expired sessions and codes go whenever a new session comes: no timer needed.
      await trx.deleteFrom('console_sessions').where('expires_at', '<=', now).execute();
      await trx.deleteFrom('console_signin_codes').where('expires_at', '<=', now).execute();
      await trx
        .insertInto('console_sessions')
        .values({ id_hash: hash(secret), created_at: now, expires_at: expiresAt, user, credential })
        .execute();
    });
    return { secret, idHash: hash(secret), expiresAt, csrf: csrfOf(secret), user, credential };
  }

  /** The session a cookie's secret belongs to, or undefined when it is unknown, ended or expired. */
  async find(secret: string): Promise<ConsoleSession | undefined> {
    if (secret.length === 0 || secret.length > 256) return undefined;
    const row = await this.deps.db
      .selectFrom('console_sessions')
      .select(['id_hash', 'expires_at', 'user', 'credential'])
      .where('id_hash', '=', hash(secret))
      .executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.deps.clock.now()) return undefined;
    return {
      idHash: row.id_hash,
      expiresAt: Number(row.expires_at),
      csrf: csrfOf(secret),
      user: row.user,
      credential: row.credential,
    };
  }

  /** The user of a refused sign-in code (see signInCodeOwner). */
  async codeOwner(code: string): Promise<string | undefined> {
    return signInCodeOwner(this.deps.db, code);
  }

  /** Ends a session everywhere (sign-out). */
  async end(idHash: string): Promise<void> {
    await this.deps.write((trx) =>
      trx.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute(),
    );
  }

  /**
   * A one-time sign-in code for one user, valid for a short while; only its hash is stored.
   * `inTransaction` runs in the same transaction (a ledger decision that the link was made).
   */
  async issueCode(
    user = 'admin',
    inTransaction?: (trx: Kysely<Schema>, expiresAt: number) => Promise<void>,
  ): Promise<{ code: string; expiresAt: number }> {
    const code = randomBytes(24).toString('base64url');
    const expiresAt = this.deps.clock.now() + SIGNIN_CODE_LIFETIME_MS;
    await this.deps.write(async (trx) => {
      await trx
        .insertInto('console_signin_codes')
        .values({ code_hash: hash(code), expires_at: expiresAt, user })
        .execute();
      await inTransaction?.(trx, expiresAt);
    });
    return { code, expiresAt };
  }

  /**
   * Uses a sign-in code up: its user once for a known, unexpired code, undefined ever after. The
   * conditional update makes two replicas racing for one code give one session.
   */
  async redeemCode(code: string): Promise<string | undefined> {
    if (code.length === 0 || code.length > 256) return undefined;
    const now = this.deps.clock.now();
    // A read first: a flood of wrong codes must not cost a write (a transaction) each.
    const live = await this.deps.db
      .selectFrom('console_signin_codes')
      .select(['code_hash', 'user'])
      .where('code_hash', '=', hash(code))
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (!live) return undefined;
    const result = await this.deps.write((trx) =>
      trx
        .updateTable('console_signin_codes')
        .set({ used_at: now })
        .where('code_hash', '=', hash(code))
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows === 1n ? live.user : undefined;
  }
}

/**
 * The user a sign-in code was made for, whatever its state: asked only once it was refused, so
 * that a used or expired link counts against its user as well as its source.
 */
export async function signInCodeOwner(db: Kysely<Schema>, code: string): Promise<string | undefined> {
  if (code.length === 0 || code.length > 256) return undefined;
  const row = await db
    .selectFrom('console_signin_codes')
    .select('user')
    .where('code_hash', '=', hash(code))
    .executeTakeFirst();
  return row?.user;
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(presented: string | undefined, session: ConsoleSession): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(session.csrf).digest();
  return timingSafeEqual(a, b);
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
