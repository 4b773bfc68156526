import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { EnrollResponse, Facts, Labels } from './wire.js';

/**
 * Enrollment without a join token (CONTRACT section 11): a host queues a request carrying its
 * CSR, an operator compares the key's fingerprint with what the host printed and approves it, or
 * signs a request file brought over by hand for a host with no route to the server.
 */

/** `sha256:<hex>` of a key's DER SubjectPublicKeyInfo: the form `--ca-pin` takes. */
export function spkiFingerprint(spkiDer: Uint8Array): string {
  return `sha256:${createHash('sha256').update(spkiDer).digest('hex')}`;
}

export const REQUEST_STATUSES = ['pending', 'approved', 'rejected', 'expired'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** What a host asks for: no token, its key's CSR, the name, profile and labels it would like. */
export const NodeRequestBody = Type.Object(
  {
    csr: Type.String({ minLength: 1, maxLength: 16_384 }),
    name: Type.Optional(Type.String({ maxLength: 1024 })),
    profile: Type.Optional(Type.String({ maxLength: 128 })),
    labels: Type.Optional(Labels),
    facts: Facts,
  },
  { additionalProperties: false },
);
export type NodeRequestBody = Static<typeof NodeRequestBody>;

/**
 * A queued request as its host sees it when polling. `id` is an unguessable handle; once
 * approved, `enrolled` carries the certificate, which is useless without the host's key.
 */
export const NodeRequestState = Type.Object({
  id: Type.String(),
  name: Type.String(),
  fingerprint: Type.String(),
  status: Type.Union(REQUEST_STATUSES.map((s) => Type.Literal(s))),
  expiresAt: Type.String(),
  enrolled: Type.Optional(EnrollResponse),
});
export type NodeRequestState = Static<typeof NodeRequestState>;

/** A pending request as `muster nodes pending` lists it. */
export const PendingRequestView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  fingerprint: Type.String(),
  source: Type.String(),
  profile: Type.Union([Type.String(), Type.Null()]),
  labels: Labels,
  hostname: Type.String(),
  requestedAt: Type.String(),
  expiresAt: Type.String(),
});
export type PendingRequestView = Static<typeof PendingRequestView>;

export const PendingRequestList = Type.Object({ items: Type.Array(PendingRequestView) });
export type PendingRequestList = Static<typeof PendingRequestList>;

export const ApproveRequestBody = Type.Object(
  { fingerprint: Type.String({ maxLength: 128 }) },
  { additionalProperties: false },
);
export type ApproveRequestBody = Static<typeof ApproveRequestBody>;

/** The answer to an approval, a rejection or a signature. */
export const RequestDecision = Type.Object({
  name: Type.String(),
  fingerprint: Type.String(),
  status: Type.Union([Type.Literal('approved'), Type.Literal('rejected')]),
  nodeId: Type.Optional(Type.String()),
});
export type RequestDecision = Static<typeof RequestDecision>;

/** `muster nodes sign`: the server signs a request file at once; the answer becomes the grant. */
export const SignedGrant = Type.Object({
  fingerprint: Type.String(),
  server: Type.String(),
  enrolled: EnrollResponse,
});
export type SignedGrant = Static<typeof SignedGrant>;

/** The file `muster agent request --out` writes and `muster nodes sign` reads. */
export const REQUEST_FILE_KIND = 'muster-node-request/v1';
/** The file `muster nodes sign --out` writes and `muster agent --grant` reads. */
export const GRANT_FILE_KIND = 'muster-node-grant/v1';
