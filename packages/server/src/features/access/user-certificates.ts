import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { USER_NAME_PATTERN } from '@muster/proto';
import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { RefusedCredentialError } from '../../http/auth.js';
import type { Principal } from '../../identity.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import { parseRole } from './people.js';

const USER_NAME = new RegExp(USER_NAME_PATTERN);

/** The SPIFFE ID a certificate carries: one URI SAN, or undefined for none or several. */
function spiffeIdOf(cert: X509Certificate): string | undefined {
  const uris = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((name) => name.startsWith('URI:'))
    .map((name) => name.slice(4));
  return uris.length === 1 ? uris[0] : undefined;
}

export interface UserCertificateDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  trustDomain: string;
  /** The roots trusted now: a certificate of a retired root is refused on a live connection too. */
  roots: Pick<FleetRoots, 'trusts'>;
}

/**
 * Personal client certificates on the admin plane, checked on every request as node identities
 * are: issued by a fleet root trusted now, within its validity, naming a user (never a node),
 * issued to that user and neither revoked nor superseded, and the user there and enabled.
 */
export class UserCertificates {
  constructor(private readonly deps: UserCertificateDeps) {}

  /** The principal behind the connection's certificate; undefined when it presented none. */
  async principal(request: FastifyRequest): Promise<Principal | undefined> {
    const socket = request.raw.socket as TLSSocket;
    if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
    const cert = socket.getPeerX509Certificate();
    if (!cert) return undefined;
    // A browser holding the certificate would send it on any site's behalf, as it does cookies.
    const site = request.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site')
      throw new RefusedCredentialError(
        'a client certificate is not accepted on a request another site made',
        'cross_site_certificate',
      );
    const user = this.userOf(cert);
    const code = socket.authorized ? undefined : authorizationCode(socket);
    if (code === 'CERT_HAS_EXPIRED' || Date.parse(cert.validTo) <= this.deps.clock.now())
      throw new RefusedCredentialError(
        'the client certificate has expired; run muster login again',
        'certificate_expired',
        user,
      );
    if (code === 'CERT_NOT_YET_VALID')
      throw new RefusedCredentialError(
        "the client certificate is not valid yet; check this machine's clock",
        'certificate_not_yet_valid',
        user,
      );
    if (code !== undefined || !this.deps.roots.trusts(cert))
      throw new RefusedCredentialError(
        "the client certificate was not issued by this fleet's CA",
        'certificate_untrusted',
      );
    if (user === undefined) throw this.notAUser(cert);
    return this.lookUp(user, cert.serialNumber.toLowerCase());
  }

  /** The user a certificate names, by its SPIFFE ID in this trust domain. */
  private userOf(cert: X509Certificate): string | undefined {
    const prefix = `spiffe://${this.deps.trustDomain}/user/`;
    const id = spiffeIdOf(cert);
    if (!id?.startsWith(prefix)) return undefined;
    const name = id.slice(prefix.length);
    return USER_NAME.test(name) ? name : undefined;
  }

  private notAUser(cert: X509Certificate): RefusedCredentialError {
    const id = spiffeIdOf(cert) ?? '';
    if (id.startsWith(`spiffe://${this.deps.trustDomain}/node/`))
      return new RefusedCredentialError(
        "this is a node's identity, not a user's: users and nodes are different principals; sign in with muster login",
        'not_a_user',
      );
    return new RefusedCredentialError('the client certificate names no user of this fleet', 'not_a_user');
  }

  private async lookUp(user: string, serial: string): Promise<Principal> {
    const row = await this.deps.db
      .selectFrom('users as u')
      .leftJoin('roles as r', 'r.name', 'u.role')
      .leftJoin('user_certificates as c', (join) =>
        join.on('c.serial', '=', serial).onRef('c.user', '=', 'u.name'),
      )
      .select([
        'u.role',
        'u.disabled_at',
        'r.spec',
        'c.serial',
        'c.revoked_at',
        'c.superseded_at',
        'c.first_used_at',
        'c.renewed_from',
      ])
      .where('u.name', '=', user)
      .executeTakeFirst();
    if (!row) throw new RefusedCredentialError(`no user named ${user}`, 'no_user');
    if (row.disabled_at !== null)
      throw new RefusedCredentialError(`user ${user} is disabled`, 'user_disabled', user);
    if (row.serial === null || row.revoked_at !== null)
      throw new RefusedCredentialError(
        'this certificate is not current (revoked, or never issued to this user)',
        'certificate_revoked',
        user,
      );
    if (row.superseded_at !== null)
      throw new RefusedCredentialError(
        'this certificate was superseded by a renewal; only the renewed one is accepted',
        'certificate_superseded',
        user,
      );
    if (row.first_used_at === null) await this.firstUse(serial, row.renewed_from);
    return { user, credential: `cert:${serial}`, roles: [parseRole(row.role, row.spec)] };
  }

  /** A renewed certificate's first use supersedes the one it renewed: once, as nodes' do. */
  private async firstUse(serial: string, renewedFrom: string | null): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      await trx
        .updateTable('user_certificates')
        .set({ first_used_at: now })
        .where('serial', '=', serial)
        .where('first_used_at', 'is', null)
        .execute();
      if (renewedFrom !== null)
        await trx
          .updateTable('user_certificates')
          .set({ superseded_at: now })
          .where('serial', '=', renewedFrom)
          .where('superseded_at', 'is', null)
          .execute();
    });
  }
}

function authorizationCode(socket: TLSSocket): string {
  const reason = socket.authorizationError as unknown;
  if (!reason) return 'UNAUTHORIZED';
  return typeof reason === 'string' ? reason : ((reason as { code?: string }).code ?? 'UNAUTHORIZED');
}
