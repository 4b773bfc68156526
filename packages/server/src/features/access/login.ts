import { createHash, randomBytes } from 'node:crypto';
import type { LoginCode, LoginResponse } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { NotFoundError } from '../../errors.js';
import { RefusedCredentialError } from '../../http/auth.js';
import type { Principal } from '../../identity.js';
import { verifiedCsrKey } from '../../pki/csr.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';

/** How long a login code printed by `muster user add` (or `muster user login-code`) works. */
export const LOGIN_CODE_LIFETIME_MS = 24 * 3_600_000;
export const DEFAULT_USER_CERT_LIFETIME_MS = 12 * 3_600_000;

const hashCode = (code: string) => createHash('sha256').update(code).digest('hex');
/** How a code is named in the ledger: a prefix of its hash, which says nothing of the code. */
const codeId = (hash: string) => `code:${hash.slice(0, 16)}`;

/** One message for a code that is unknown, used or expired, as for join tokens. */
const CODE_REFUSED =
  'the login code is unknown, used or expired; ask an admin for a new one (muster user login-code NAME)';

export interface LoginDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  roots: Pick<FleetRoots, 'issuer' | 'bundle'>;
  certLifetimeMs: number;
}

/**
 * `muster login`: one-time login codes, and the personal client certificates they (and, later,
 * the certificate held) are exchanged for. The key is the user's; only a CSR comes here.
 */
export class LoginService {
  constructor(private readonly deps: LoginDeps) {}

  /**
   * A new login code for a user; an older code of theirs not yet used stops working. Only its
   * hash is stored. A ledger decision by whoever asked.
   */
  async issueCode(user: string, actor: string): Promise<LoginCode> {
    const { write, clock, decisions } = this.deps;
    const code = `mlc_${randomBytes(32).toString('base64url')}`;
    const now = clock.now();
    const expiresAt = now + LOGIN_CODE_LIFETIME_MS;
    await write(async (trx) => {
      const row = await trx.selectFrom('users').select('name').where('name', '=', user).executeTakeFirst();
      if (!row) throw new NotFoundError(`no user named ${user}`, 'no_user');
      await trx.deleteFrom('login_codes').where('user', '=', user).where('used_at', 'is', null).execute();
      // Expired codes go whenever a new one comes: no timer needed.
      await trx.deleteFrom('login_codes').where('expires_at', '<=', now).execute();
      const codeHash = hashCode(code);
      await trx
        .insertInto('login_codes')
        .values({
          code_hash: codeHash,
          user,
          created_at: now,
          created_by: actor,
          expires_at: expiresAt,
          used_at: null,
        })
        .execute();
      await decisions.record(trx, {
        kind: 'user.login_code_issued',
        actor,
        subject: `user:${user}`,
        data: { code: codeId(codeHash), expiresAt },
      });
    });
    return { user, code, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * A first login: uses the code up (once, also across replicas racing for it) and issues a
   * certificate for the CSR's key. Throws RefusedCredentialError, naming the user when the code
   * was theirs (used or expired).
   */
  async redeem(code: string, csrPem: string): Promise<LoginResponse> {
    const spki = verifiedCsrKey(csrPem);
    const codeHash = hashCode(code);
    const now = this.deps.clock.now();
    // A read first: a flood of wrong codes must not cost a transaction each.
    const found = await this.deps.db
      .selectFrom('login_codes')
      .select(['user', 'used_at', 'expires_at'])
      .where('code_hash', '=', codeHash)
      .executeTakeFirst();
    if (!found || found.used_at !== null || Number(found.expires_at) <= now)
      throw new RefusedCredentialError(CODE_REFUSED, 'login_code_refused', found?.user);
    return this.issue(found.user, spki, codeId(codeHash), null, async (trx) => {
      const used = await trx
        .updateTable('login_codes')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(used.numUpdatedRows) !== 1)
        throw new RefusedCredentialError(CODE_REFUSED, 'login_code_refused', found.user);
    });
  }

  /** A later login: the certificate presented (already checked) is renewed for the CSR's key. */
  async renew(principal: Principal, csrPem: string): Promise<LoginResponse> {
    const spki = verifiedCsrKey(csrPem);
    const serial = principal.credential.replace(/^cert:/, '');
    return this.issue(principal.user, spki, principal.credential, serial, async () => {});
  }

  private async issue(
    user: string,
    spki: Uint8Array,
    credential: string,
    renewedFrom: string | null,
    consume: (trx: Kysely<Schema>) => Promise<void>,
  ): Promise<LoginResponse> {
    const { write, clock, ids, decisions, roots, certLifetimeMs } = this.deps;
    const now = clock.now();
    const issued = roots
      .issuer()
      .issueUserCertificate({ spki, user, serial: ids.serial(), now, lifetimeMs: certLifetimeMs });
    await write(async (trx) => {
      await consume(trx);
      const row = await trx
        .selectFrom('users')
        .select('disabled_at')
        .where('name', '=', user)
        .executeTakeFirst();
      if (!row || row.disabled_at !== null)
        throw new RefusedCredentialError(`user ${user} is disabled`, 'user_disabled', user);
      await trx
        .insertInto('user_certificates')
        .values({
          serial: issued.serial,
          user,
          not_before: issued.notBefore,
          not_after: issued.notAfter,
          issued_at: now,
          renewed_from: renewedFrom,
          first_used_at: null,
          superseded_at: null,
          revoked_at: null,
        })
        .execute();
      await decisions.record(trx, {
        kind: 'user.certificate_issued',
        actor: `user:${user}`,
        subject: `user:${user}`,
        data: {
          serial: issued.serial,
          notAfter: issued.notAfter,
          via: renewedFrom === null ? 'code' : 'renewal',
          credential,
          ...(renewedFrom === null ? {} : { renewedFrom }),
        },
      });
    });
    return {
      user,
      certificate: issued.pem,
      serial: issued.serial,
      notAfter: new Date(issued.notAfter).toISOString(),
      caBundle: roots.bundle(),
    };
  }
}
