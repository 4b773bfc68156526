import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Command, Policy, UnsignedReceipt } from './commands.js';
import { canonicalJson } from './jcs.js';
import {
  COMMAND_CONTEXT,
  commandSignatureValid,
  FINGERPRINT_PATTERN,
  formatPublicKey,
  keyFingerprint,
  parsePublicKey,
  policySignatureValid,
  RECEIPT_CONTEXT,
  receiptSignatureValid,
  SignatureError,
  signCommand,
  signPolicy,
  signReceipt,
} from './signatures.js';

const operator = generateKeyPairSync('ed25519');
const operatorKey = formatPublicKey(operator.publicKey);
const root = generateKeyPairSync('ed25519');
const rootKey = formatPublicKey(root.publicKey);
const node = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const command: Command = {
  v: 1,
  id: 'cmd-sig-000001',
  nonce: 'AAAAAAAAAAAAAAAAAAAAAAAA',
  issuedAt: '2026-11-22T12:00:00.000Z',
  expiresAt: '2026-11-22T12:01:00.000Z',
  operator: 'alice',
  target: { labels: { env: 'prod' } },
  action: 'restart',
  args: { unit: 'nginx', mode: 'fast' },
};

const policy: Policy = {
  version: 7,
  operators: [{ name: 'alice', publicKey: operatorKey, profiles: ['web'] }],
  profiles: {
    web: {
      actions: { restart: { argv: ['systemctl', 'restart', '{unit}'], timeoutSec: 5, maxOutputBytes: 10 } },
    },
  },
};

const receipt: UnsignedReceipt = {
  commandId: command.id,
  nodeId: 'node-1',
  status: 'succeeded',
  exitCode: 0,
  startedAt: '2026-11-22T12:00:01.000Z',
  finishedAt: '2026-11-22T12:00:02.000Z',
  stdoutTail: 'ok\n',
  stderrTail: '',
  outputSha256: createHash('sha256').update('ok\n').digest('hex'),
};

/** The other base64 spellings of the same bytes: unused low bits set, padding dropped, whitespace. */
function respellings(signature: string): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const body = signature.replace(/=+$/, '');
  const last = alphabet.indexOf(body.at(-1)!);
  const padding = signature.slice(body.length);
  const spare = padding.length === 2 ? 0b1111 : padding.length === 1 ? 0b11 : 0;
  const out = [body, `${signature}\n`, ` ${signature}`, `${signature.slice(0, 10)}\n${signature.slice(10)}`];
  if (spare) out.push(`${body.slice(0, -1)}${alphabet[last | spare]}${padding}`);
  return out.filter((s) => s !== signature);
}

describe('command signatures', () => {
  test('a signed command verifies with its operator key, and only with it', () => {
    const signature = signCommand(command, operator.privateKey);
    assert.ok(commandSignatureValid(command, signature, operatorKey));
    assert.ok(!commandSignatureValid(command, signature, rootKey));
    // Key order does not matter: the signature is over the canonical form.
    const reordered = Object.fromEntries(Object.entries(command).reverse()) as Command;
    assert.ok(commandSignatureValid(reordered, signature, operatorKey));
  });

  test('the signed bytes are the context line and the RFC 8785 text, as an operator tool would make them', () => {
    const own = sign(null, Buffer.from(COMMAND_CONTEXT + canonicalJson(command)), operator.privateKey);
    assert.ok(commandSignatureValid(command, own.toString('base64'), operatorKey));
    const noContext = sign(null, Buffer.from(canonicalJson(command)), operator.privateKey);
    assert.ok(!commandSignatureValid(command, noContext.toString('base64'), operatorKey));
  });

  test('a command signature never verifies as a policy, even over the same object', () => {
    const asPolicy = command as unknown as Policy;
    const signature = signCommand(command, root.privateKey);
    assert.ok(!policySignatureValid(asPolicy, signature, rootKey));
    const policySignature = signPolicy(asPolicy, root.privateKey);
    assert.ok(policySignatureValid(asPolicy, policySignature, rootKey));
    assert.ok(!commandSignatureValid(command, policySignature, rootKey));
  });

  test('the same bytes in a non-canonical base64 spelling are refused', () => {
    const signature = signCommand(command, operator.privateKey);
    const spellings = respellings(signature);
    assert.ok(spellings.length >= 4);
    for (const spelled of spellings) {
      assert.ok(!commandSignatureValid(command, spelled, operatorKey), JSON.stringify(spelled));
      assert.ok(!policySignatureValid(policy, spelled, rootKey));
    }
  });

  test('garbage signatures and keys are a plain no, never a throw', () => {
    for (const signature of ['', 'AA==', 'not base64 at all!', 'A'.repeat(88), 'A'.repeat(86)])
      assert.equal(commandSignatureValid(command, signature, operatorKey), false);
    const signature = signCommand(command, operator.privateKey);
    for (const key of [
      '',
      'ed25519:',
      'ed25519:AAAA',
      operatorKey.replace('ed25519:', 'ecdsa:'),
      'x'.repeat(60),
    ])
      assert.equal(commandSignatureValid(command, signature, key), false);
  });

  test('property: changing any field of a signed command breaks its signature', () => {
    const signature = signCommand(command, operator.privateKey);
    const tampered = fc.oneof(
      fc.record({
        field: fc.constantFrom('id', 'nonce', 'issuedAt', 'expiresAt', 'operator', 'action'),
        value: fc.string(),
      }),
      fc.record({
        field: fc.constant('args'),
        value: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
      }),
      fc.record({
        field: fc.constant('target'),
        value: fc.oneof(
          fc.record({ nodes: fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }) }),
          fc.record({ labels: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })) }),
          fc.record({ profile: fc.string() }),
          fc.constant({ all: true }),
        ),
      }),
      fc.record({ field: fc.constant('v'), value: fc.integer() }),
    );
    fc.assert(
      fc.property(tampered, ({ field, value }) => {
        const changed = { ...command, [field]: value } as Command;
        fc.pre(canonicalJson(changed) !== canonicalJson(command));
        return !commandSignatureValid(changed, signature, operatorKey);
      }),
      { numRuns: 300 },
    );
  });

  test('property: flipping any bit of the signature breaks it', () => {
    const signature = Buffer.from(signCommand(command, operator.privateKey), 'base64');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 * 8 - 1 }), (bit) => {
        const flipped = Buffer.from(signature);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        return !commandSignatureValid(command, flipped.toString('base64'), operatorKey);
      }),
      { numRuns: 200 },
    );
  });

  test('a malleated signature (S + L, the same point) is refused', () => {
    const signature = Buffer.from(signCommand(command, operator.privateKey), 'base64');
    // L, the order of the Ed25519 group, little-endian, as S is stored.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
    let bumped = s + L;
    const malleated = Buffer.from(signature);
    for (let i = 32; i < 64; i++) {
      malleated[i] = Number(bumped & 0xffn);
      bumped >>= 8n;
    }
    assert.equal(bumped, 0n, 'S + L still fits in 32 bytes');
    assert.ok(!commandSignatureValid(command, malleated.toString('base64'), operatorKey));
  });
});

describe('policy signatures', () => {
  test('a root-signed policy verifies with the root key and no other', () => {
    const signature = signPolicy(policy, root.privateKey);
    assert.ok(policySignatureValid(policy, signature, rootKey));
    assert.ok(!policySignatureValid(policy, signature, operatorKey));
    assert.ok(!policySignatureValid({ ...policy, version: 8 }, signature, rootKey));
    const moreProfiles = structuredClone(policy);
    moreProfiles.operators[0]!.profiles.push('db');
    assert.ok(!policySignatureValid(moreProfiles, signature, rootKey));
  });
});

describe('receipt signatures', () => {
  const signed = (r: UnsignedReceipt, key: KeyObject = node.privateKey) => ({
    ...r,
    signature: signReceipt(r, key),
  });

  test('a receipt verifies with the node key that signed it, and not with another node key', () => {
    assert.ok(receiptSignatureValid(signed(receipt), node.publicKey));
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.ok(!receiptSignatureValid(signed(receipt, other.privateKey), node.publicKey));
    assert.ok(!receiptSignatureValid(signed(receipt), other.publicKey));
  });

  test('a receipt signature is over the receipt context, never a command or policy one', () => {
    const raw = sign('sha256', Buffer.from(canonicalJson(receipt)), node.privateKey).toString('base64');
    assert.ok(!receiptSignatureValid({ ...receipt, signature: raw }, node.publicKey));
    const own = sign('sha256', Buffer.from(RECEIPT_CONTEXT + canonicalJson(receipt)), node.privateKey);
    assert.ok(receiptSignatureValid({ ...receipt, signature: own.toString('base64') }, node.publicKey));
    const asCommand = sign('sha256', Buffer.from(COMMAND_CONTEXT + canonicalJson(receipt)), node.privateKey);
    assert.ok(
      !receiptSignatureValid({ ...receipt, signature: asCommand.toString('base64') }, node.publicKey),
    );
  });

  test('non-canonical base64, a garbage certificate and an empty signature are refused', () => {
    const good = signed(receipt);
    for (const spelled of respellings(good.signature))
      assert.ok(
        !receiptSignatureValid({ ...good, signature: spelled }, node.publicKey),
        JSON.stringify(spelled),
      );
    assert.ok(!receiptSignatureValid({ ...good, signature: '' }, node.publicKey));
    assert.ok(!receiptSignatureValid(good, 'not a certificate'));
    assert.ok(!receiptSignatureValid(good, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'));
  });

  test('property: changing what a receipt says breaks its signature', () => {
    const good = signed(receipt);
    const change = fc.oneof(
      fc.record({
        field: fc.constantFrom(
          'commandId',
          'nodeId',
          'startedAt',
          'finishedAt',
          'stdoutTail',
          'stderrTail',
          'outputSha256',
          'reason',
        ),
        value: fc.string(),
      }),
      fc.record({
        field: fc.constant('status'),
        value: fc.constantFrom('failed', 'timed_out', 'rejected', 'interrupted'),
      }),
      fc.record({
        field: fc.constant('exitCode'),
        value: fc.oneof(fc.integer({ min: 1, max: 255 }), fc.constant(null)),
      }),
    );
    fc.assert(
      fc.property(change, ({ field, value }) => {
        const changed = { ...good, [field]: value };
        fc.pre(canonicalJson(changed) !== canonicalJson(good));
        return !receiptSignatureValid(changed, node.publicKey);
      }),
      { numRuns: 100 },
    );
  });
});

describe('public keys and fingerprints', () => {
  test('formatPublicKey and parsePublicKey round-trip; the fingerprint is SHA-256 of the raw key', () => {
    const parsed = parsePublicKey(operatorKey);
    assert.equal(formatPublicKey(parsed), operatorKey);
    const raw = Buffer.from(operatorKey.slice('ed25519:'.length), 'base64');
    assert.equal(raw.length, 32);
    const pin = keyFingerprint(operatorKey);
    assert.match(pin, FINGERPRINT_PATTERN);
    assert.equal(pin, `sha256:${createHash('sha256').update(raw).digest('hex')}`);
  });

  test('a key in a non-canonical spelling, another algorithm or the wrong length is refused', () => {
    const body = operatorKey.slice('ed25519:'.length, -1);
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.indexOf(body.at(-1)!);
    const respelled = `ed25519:${body.slice(0, -1)}${'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[last | 1]}=`;
    for (const text of [
      operatorKey.slice(0, -1),
      `${operatorKey}\n`,
      operatorKey.replace('ed25519:', 'ED25519:'),
      `ed25519:${Buffer.alloc(33).toString('base64')}`,
      ...(respelled === operatorKey ? [] : [respelled]),
    ]) {
      assert.throws(() => parsePublicKey(text), SignatureError, JSON.stringify(text));
      assert.throws(() => keyFingerprint(text), SignatureError);
    }
  });
});
