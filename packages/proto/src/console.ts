import { type Static, Type } from '@sinclair/typebox';
import { RoleSpecSchema } from './access.js';

/**
 * The console's own admin routes: signing in (a session in an httpOnly cookie) and the fleet
 * bar's figures that no other route gives.
 */

/** `POST /v1/session`: the admin token, or a one-time code from a sign-in link. */
export const SessionCreateRequest = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type SessionCreateRequest = Static<typeof SessionCreateRequest>;

/** A session as the console sees it: the CSRF token to echo in `x-muster-csrf`, and its end. */
export const SessionView = Type.Object({
  csrf: Type.String(),
  expiresAt: Type.String(),
});
export type SessionView = Static<typeof SessionView>;

/** `POST /v1/console/links`: takes nothing. */
export const SignInLinkRequest = Type.Object({}, { additionalProperties: false });
export type SignInLinkRequest = Static<typeof SignInLinkRequest>;

/**
 * A fresh one-time sign-in code (`muster console link`): the console at `/#code=<code>` signs in
 * with it once, before `expiresAt`. Made on request so that no code has to sit in a log.
 */
export const SignInLinkCreated = Type.Object({
  code: Type.String(),
  /** The path and fragment to open on the admin plane: `/#code=…`. */
  path: Type.String(),
  expiresAt: Type.String(),
});
export type SignInLinkCreated = Static<typeof SignInLinkCreated>;

/** `GET /v1/session/sso`: whether the sign-in page offers single sign-on, and through whom. */
export const SsoOptions = Type.Object({
  enabled: Type.Boolean(),
  /** The identity provider's issuer URL, when enabled. */
  issuer: Type.Union([Type.String(), Type.Null()]),
});
export type SsoOptions = Static<typeof SsoOptions>;

/** `POST /v1/session/sso`: where to send the browser to sign in at the identity provider. */
export const SsoStarted = Type.Object({ url: Type.String() });
export type SsoStarted = Static<typeof SsoStarted>;

/**
 * `POST /v1/session/sso/callback`: the query string the identity provider sent the browser back
 * to `/signin/sso` with (`code=…&state=…`, or `error=…`), exchanged for a console session.
 */
export const SsoCallbackRequest = Type.Object(
  { query: Type.String({ minLength: 1, maxLength: 8192 }) },
  { additionalProperties: false },
);
export type SsoCallbackRequest = Static<typeof SsoCallbackRequest>;

/** `GET /v1/fleet`: the figures of the console's fleet bar. */
export const FleetSummary = Type.Object({
  /** Agent channels held by the server that answered (each replica holds its own). */
  channelsHeld: Type.Integer(),
  /** Heartbeats per second taken by the server that answered, over the last few seconds. */
  heartbeatsPerSec: Type.Union([Type.Number(), Type.Null()]),
  /** Null for a role that may not read the ledger. */
  ledger: Type.Union([
    Type.Object({
      size: Type.Integer(),
      /** The newest signed checkpoint: its tree size and when it was signed. */
      checkpoint: Type.Union([Type.Object({ size: Type.Integer(), signedAt: Type.String() }), Type.Null()]),
    }),
    Type.Null(),
  ]),
});
export type FleetSummary = Static<typeof FleetSummary>;

/**
 * `GET /v1/me`: who the credential of the request belongs to, and the rules of every role that
 * must allow what it asks (the user's own, then an API token's narrower one), so the console can
 * leave out what the server would refuse.
 */
export const MeView = Type.Object({
  user: Type.String(),
  /** The user's own role. */
  role: Type.String(),
  /** The credential the request came with: an API token's id, or how a console session began. */
  credential: Type.String(),
  roles: Type.Array(RoleSpecSchema),
});
export type MeView = Static<typeof MeView>;
