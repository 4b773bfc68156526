import type { ServerError } from '@muster/host';
import type { StoredIdentity } from './identity.js';

/** What the agent says when the server will not take this identity, and how the operator brings the host back. */
export function expiredMessage(identity: StoredIdentity): string {
  return (
    `this node's certificate expired at ${identity.notAfter} and an expired identity cannot be renewed; ` +
    `on the server run "muster token create --name ${identity.name}", then start this agent with the line it ` +
    'prints to enroll again under the same name (retrying meanwhile)'
  );
}

/** TLS verification failures that mean the server's chain leads to no root in ca.pem. */
const UNTRUSTED_SERVER_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

export function untrustedServer(err: unknown): boolean {
  return UNTRUSTED_SERVER_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

export function untrustedMessage(identity: StoredIdentity, enrollingAgain: boolean): string {
  const what =
    "the server's certificate does not lead to a fleet CA this node holds (was the CA rotated while it was away?)";
  return enrollingAgain
    ? `${what}; enrolling again with the join token`
    : `${what}; on the server run "muster token create --name ${identity.name}" and start this agent with the line it prints (retrying meanwhile)`;
}

export function refusedMessage(identity: StoredIdentity, err: ServerError): string {
  if (err.problem?.code === 'identity_expired') return expiredMessage(identity);
  if (err.problem?.code === 'identity_superseded')
    return 'the server says this certificate was superseded by a renewal: another host may hold this identity; retrying';
  return (
    'the server refuses this node identity (decommissioned or revoked); to bring the host back, run ' +
    `"muster token create --name ${identity.name}" on the server and start this agent with the line it prints (retrying meanwhile)`
  );
}
