import { type Static, Type } from '@sinclair/typebox';
import { USER_NAME_PATTERN, UserView } from './access.js';

/** The shape of a login code, as `muster user add` and `muster user login-code` print it. */
export const LOGIN_CODE_PATTERN = '^mlc_[A-Za-z0-9_-]{43}$';

/**
 * `POST /v1/login`: a CSR for a key the user made on their own machine, with the one-time code
 * of their first login, or (to renew) without one, over a connection that presents the personal
 * certificate they hold.
 */
export const LoginRequest = Type.Object(
  {
    csr: Type.String({ minLength: 1, maxLength: 16_384 }),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object({
  user: Type.String(),
  certificate: Type.String(),
  serial: Type.String(),
  notAfter: Type.String(),
  /** The fleet CA roots that issued the certificate (more than one during a CA rotation). */
  caBundle: Type.String(),
});
export type LoginResponse = Static<typeof LoginResponse>;

/** A login code, shown once: `muster login --code CODE` exchanges it for a certificate. */
export const LoginCode = Type.Object({
  user: Type.String({ pattern: USER_NAME_PATTERN }),
  code: Type.String(),
  expiresAt: Type.String(),
});
export type LoginCode = Static<typeof LoginCode>;

/** `POST /v1/users` answers with the user and the code of their first `muster login`. */
export const UserCreated = Type.Composite([UserView, Type.Object({ loginCode: LoginCode })]);
export type UserCreated = Static<typeof UserCreated>;
