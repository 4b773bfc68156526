import { createHash, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';
import type { Command, Policy, UnsignedReceipt } from './commands.js';
import { PUBLIC_KEY_PATTERN } from './commands.js';
import { canonicalJson } from './jcs.js';
import { ed25519FromRaw, rawEd25519 } from './note.js';

/**
 * Signature envelopes (CONTRACT section 5). Each signs a fixed context line and the RFC 8785
 * text of the object, so a signature made for one kind of object never verifies as another.
 */
export const COMMAND_CONTEXT = 'muster-command-v1\n';
export const POLICY_CONTEXT = 'muster-policy-v1\n';
export const RECEIPT_CONTEXT = 'muster-receipt-v1\n';

const PUBLIC_KEY_RE = new RegExp(PUBLIC_KEY_PATTERN);

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

/** `ed25519:<base64 of the 32 raw bytes>`. */
export function formatPublicKey(publicKey: KeyObject): string {
  return `ed25519:${rawEd25519(publicKey).toString('base64')}`;
}

export function parsePublicKey(text: string): KeyObject {
  if (!PUBLIC_KEY_RE.test(text))
    throw new SignatureError('a public key looks like ed25519:<base64 of 32 bytes>');
  return ed25519FromRaw(Buffer.from(text.slice('ed25519:'.length), 'base64'));
}

/** `sha256:<hex>` of the raw key: what a join line carries to pin the fleet root. */
export function keyFingerprint(text: string): string {
  parsePublicKey(text);
  return `sha256:${createHash('sha256')
    .update(Buffer.from(text.slice('ed25519:'.length), 'base64'))
    .digest('hex')}`;
}

export const FINGERPRINT_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** The bytes every envelope signs: its context line and the RFC 8785 text (jobs reuse it). */
export function signingInput(context: string, value: unknown): Buffer {
  return Buffer.from(context + canonicalJson(value), 'utf8');
}

/** An Ed25519 signature over `signingInput(context, value)`, in canonical base64 only. */
export function ed25519Verifies(
  context: string,
  value: unknown,
  signature: string,
  publicKey: KeyObject,
): boolean {
  const bytes = Buffer.from(signature, 'base64');
  // Base64 that does not round-trip is not the signature it pretends to be.
  if (bytes.length !== 64 || bytes.toString('base64') !== signature) return false;
  return verify(null, signingInput(context, value), publicKey, bytes);
}

export function signCommand(command: Command, privateKey: KeyObject): string {
  return sign(null, signingInput(COMMAND_CONTEXT, command), privateKey).toString('base64');
}

export function commandSignatureValid(command: Command, signature: string, publicKey: string): boolean {
  try {
    return ed25519Verifies(COMMAND_CONTEXT, command, signature, parsePublicKey(publicKey));
  } catch {
    return false;
  }
}

export function signPolicy(policy: Policy, privateKey: KeyObject): string {
  return sign(null, signingInput(POLICY_CONTEXT, policy), privateKey).toString('base64');
}

export function policySignatureValid(policy: Policy, signature: string, rootKey: string): boolean {
  try {
    return ed25519Verifies(POLICY_CONTEXT, policy, signature, parsePublicKey(rootKey));
  } catch {
    return false;
  }
}

/** A receipt is signed with the node's own identity key (ECDSA P-256, DER, SHA-256). */
export function signReceipt(receipt: UnsignedReceipt, privateKey: KeyObject): string {
  return sign('sha256', signingInput(RECEIPT_CONTEXT, receipt), privateKey).toString('base64');
}

/**
 * True when the certificate's key signed `receipt`: anyone holding the node's certificate can
 * check. Takes the PEM, or its public key already parsed (a server checking many receipts).
 */
export function receiptSignatureValid(
  receipt: UnsignedReceipt & { signature: string },
  cert: string | KeyObject,
): boolean {
  const { signature, ...unsigned } = receipt;
  try {
    const bytes = Buffer.from(signature, 'base64');
    if (bytes.toString('base64') !== signature) return false;
    const key = typeof cert === 'string' ? new X509Certificate(cert).publicKey : cert;
    return verify('sha256', signingInput(RECEIPT_CONTEXT, unsigned), key, bytes);
  } catch {
    return false;
  }
}
