import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as oidc from 'openid-client';
import type { Clock } from '../../clock.js';
import { AppError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import type { SsoSettings } from './sso-config.js';

/** The cookie that ties a sign-in at the identity provider to the browser that started it. */
export const SSO_COOKIE = 'muster_sso';
/** How long a browser may take at the identity provider before the sign-in must start again. */
export const SSO_LOGIN_LIFETIME_MS = 10 * 60_000;

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

/**
 * Why a single sign-on was refused: `reason` is stable (it goes into the `access.denied` event),
 * the message is what the sign-in page shows. `user` is the Muster user matched, if one was.
 */
export class SsoRefusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly facts: { user?: string; email?: string } = {},
  ) {
    super(message);
  }
}

/** The sign-in page's answer to a refused sign-on: 401, with the `access.denied` event's id. */
export class SsoRefusedError extends AppError {
  constructor(
    message: string,
    readonly eventId: number,
  ) {
    super(401, 'sso_refused', message);
  }
  override problemFields(): Record<string, unknown> {
    return { eventId: this.eventId };
  }
}

/** Who the identity provider vouched for, matched to a Muster user. */
export interface SsoIdentity {
  user: string;
  email: string;
  subject: string;
}

export interface SsoDeps {
  settings: SsoSettings;
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  /** Where the provider sends the browser back: `--oidc-redirect-url` or the admin plane's own. */
  redirectUrl: () => string;
}

/**
 * Console sign-in through an OpenID provider: authorization code flow with PKCE, `state` and
 * `nonce`, the ID token checked by openid-client against the provider's keys, the user matched
 * by the verified e-mail. Each sign-in under way is a row in the store, used once, so the
 * provider may send the browser back to any replica and a replayed answer is refused.
 */
export class SsoService {
  private metadata: Promise<oidc.ServerMetadata> | undefined;

  constructor(private readonly deps: SsoDeps) {}

  /** The provider's discovery document, fetched once; a failure is retried at the next sign-in. */
  private async discover(): Promise<oidc.ServerMetadata> {
    this.metadata ??= (async () => {
      const { issuer, clientId, clientSecret } = this.deps.settings;
      const options = new URL(issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {};
      const found = await oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, options);
      return found.serverMetadata();
    })();
    try {
      return await this.metadata;
    } catch (err) {
      this.metadata = undefined;
      throw new AppError(
        502,
        'sso_unavailable',
        `the identity provider ${this.deps.settings.issuer} could not be reached or answered wrongly (${(err as Error).message}); try again later`,
      );
    }
  }

  /** A client for one exchange, on Muster's clock, so its checks of `exp` follow the server's time. */
  private async client(): Promise<oidc.Configuration> {
    const { clientId, clientSecret, issuer } = this.deps.settings;
    const skewSec = Math.round((this.deps.clock.now() - Date.now()) / 1000);
    const config = new oidc.Configuration(
      await this.discover(),
      clientId,
      { client_secret: clientSecret, [oidc.clockSkew]: skewSec },
      oidc.ClientSecretBasic(clientSecret),
    );
    if (new URL(issuer).protocol === 'http:') oidc.allowInsecureRequests(config);
    return config;
  }

  /** Starts a sign-in: the provider's URL to send the browser to, and the secret of its cookie. */
  async start(): Promise<{ url: string; browserSecret: string }> {
    const config = await this.client();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    const browserSecret = randomBytes(32).toString('base64url');
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      // Abandoned sign-ins go whenever a new one starts: no timer needed.
      await trx.deleteFrom('sso_logins').where('expires_at', '<=', now).execute();
      await trx
        .insertInto('sso_logins')
        .values({
          state_hash: hash(state),
          browser_hash: hash(browserSecret),
          nonce,
          code_verifier: verifier,
          expires_at: now + SSO_LOGIN_LIFETIME_MS,
          used_at: null,
        })
        .execute();
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.deps.redirectUrl(),
      scope: 'openid email',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, browserSecret };
  }

  /**
   * Finishes a sign-in with the query the provider sent the browser back with. Throws SsoRefusal
   * for anything a person should be told; returns the e-mail the provider vouched for.
   */
  async finish(
    query: string,
    browserSecret: string | undefined,
  ): Promise<{ email: string; subject: string }> {
    const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
    const state = params.get('state');
    if (!state)
      throw new SsoRefusal(
        'no_state',
        'the sign-in answer carries no state; start again from the sign-in page',
      );
    const login = await this.claim(state, browserSecret);
    const providerError = params.get('error');
    if (providerError !== null) {
      const code = /^[\w.-]{1,64}$/.test(providerError) ? providerError : 'error';
      throw new SsoRefusal('provider_refused', `the identity provider refused the sign-in (${code})`);
    }
    const config = await this.client();
    const current = new URL(this.deps.redirectUrl());
    current.search = params.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.code_verifier,
        expectedState: state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw refusalOf(err, this.deps.settings.clientId);
    }
    const claims = tokens.claims();
    if (!claims) throw new SsoRefusal('bad_token', 'the identity provider sent no ID token');
    let email = claims.email;
    let verified = claims.email_verified;
    // Providers that keep the ID token small (oidc-provider, Keycloak by setting) give the
    // e-mail at the userinfo endpoint instead.
    if (typeof email !== 'string') {
      const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub).catch((err) => {
        throw refusalOf(err, this.deps.settings.clientId);
      });
      email = info.email;
      verified = info.email_verified;
    }
    if (typeof email !== 'string' || email === '' || email.length > 320)
      throw new SsoRefusal(
        'no_email',
        'the identity provider gave no e-mail for this account; Muster matches users by e-mail',
      );
    const lower = email.toLowerCase();
    if (verified !== true)
      throw new SsoRefusal(
        'unverified_email',
        `the e-mail ${lower} is not verified at the identity provider; verify it there, then sign in again`,
        { email: lower },
      );
    return { email: lower, subject: claims.sub };
  }

  /** Uses up the sign-in a `state` names: once, before it expires, from the browser that began it. */
  private async claim(state: string, browserSecret: string | undefined) {
    const now = this.deps.clock.now();
    const login = await this.deps.db
      .selectFrom('sso_logins')
      .selectAll()
      .where('state_hash', '=', hash(state))
      .executeTakeFirst();
    const again = 'start again from the sign-in page';
    if (!login) throw new SsoRefusal('unknown_state', `this sign-in is unknown or long expired; ${again}`);
    if (login.used_at !== null)
      throw new SsoRefusal('replayed_state', `this sign-in answer was already used once; ${again}`);
    if (Number(login.expires_at) <= now)
      throw new SsoRefusal('expired_state', `this sign-in took longer than 10 minutes; ${again}`);
    if (browserSecret === undefined || hash(browserSecret) !== login.browser_hash)
      throw new SsoRefusal(
        'other_browser',
        `this sign-in was started in another browser; ${again} in this one`,
      );
    // Conditional, so two replicas handed one answer at once give one session.
    const used = await this.deps.write((trx) =>
      trx
        .updateTable('sso_logins')
        .set({ used_at: now })
        .where('state_hash', '=', login.state_hash)
        .where('used_at', 'is', null)
        .executeTakeFirst(),
    );
    if (used.numUpdatedRows !== 1n)
      throw new SsoRefusal('replayed_state', `this sign-in answer was already used once; ${again}`);
    return login;
  }
}

/** What openid-client's refusal means for the person signing in. */
function refusalOf(err: unknown, clientId: string): SsoRefusal {
  if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError) {
    const code = /^[\w.-]{1,64}$/.test(err.error) ? err.error : 'error';
    return new SsoRefusal('provider_refused', `the identity provider refused the sign-in (${code})`);
  }
  const cause = (err as { cause?: { cause?: { claim?: string; claims?: { aud?: unknown } } } }).cause?.cause;
  const code = (err as { code?: string }).code;
  if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' && cause?.claim === 'aud')
    return new SsoRefusal(
      'wrong_audience',
      `the identity provider's ID token is meant for ${JSON.stringify(cause.claims?.aud ?? null)}, not for this console (client id ${clientId})`,
    );
  if (code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' && cause?.claim === 'exp')
    return new SsoRefusal(
      'expired_token',
      "the identity provider's ID token has expired; if this repeats, check the clocks of Muster and the identity provider",
    );
  if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' && cause?.claim === 'nonce')
    return new SsoRefusal('bad_nonce', 'the ID token was not made for this sign-in (nonce); start again');
  return new SsoRefusal(
    'bad_token',
    `the identity provider's answer could not be verified (${(err as Error).message ?? 'unknown error'})`,
  );
}
