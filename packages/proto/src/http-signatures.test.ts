import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  contentDigest,
  contentDigestMatches,
  HttpSignatureError,
  parseSignature,
  parseSignatureInput,
  SIGNED_COMPONENTS,
  serializeSignatureInput,
  signatureBase,
  signatureParam,
  signRequest,
  verifyBase,
} from './http-signatures.js';

// RFC 9421 Appendix B.1.3, test-key-ecc-p256 (public part).
const TEST_KEY_ECC_P256 = createPublicKey(`-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`);

// RFC 9421 Appendix B.2: the test request (POST /foo?param=Value&Pet=dog) and response.
const testRequest = {
  method: 'POST',
  authority: 'example.com',
  target: '/foo?param=Value&Pet=dog',
  headers: {
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest':
      'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'content-length': '18',
  },
};
const testResponse = {
  method: 'POST',
  authority: 'example.com',
  target: '/foo',
  status: 200,
  headers: {
    date: 'Tue, 20 Apr 2021 02:07:56 GMT',
    'content-type': 'application/json',
    'content-digest':
      'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
    'content-length': '23',
  },
};

describe('RFC 9421 signature base', () => {
  test('B.2.3: the request base is built byte for byte from its Signature-Input', () => {
    const input = parseSignatureInput(
      'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
      'sig-b23',
    );
    assert.equal(
      signatureBase(testRequest, input),
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
      ].join('\n'),
    );
  });

  test('B.2.4: the ecdsa-p256-sha256 signature of the RFC verifies with test-key-ecc-p256', () => {
    const input = parseSignatureInput(
      'sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
      'sig-b24',
    );
    const base = signatureBase(testResponse, input);
    assert.equal(
      base,
      [
        '"@status": 200',
        '"content-type": application/json',
        '"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
        '"content-length": 23',
        '"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
      ].join('\n'),
    );
    const signature = parseSignature(
      'sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:',
      'sig-b24',
    );
    assert.equal(verifyBase(base, signature, TEST_KEY_ECC_P256), true);
    // One byte of the base changed and it no longer verifies.
    assert.equal(verifyBase(base.replace('200', '201'), signature, TEST_KEY_ECC_P256), false);
  });

  test('@query of a request without one is "?" and @path of an empty path is "/"', () => {
    const input = { components: ['@path', '@query'], params: [] };
    assert.equal(
      signatureBase({ method: 'GET', authority: 'a', target: '', headers: {} }, input),
      '"@path": /\n"@query": ?\n"@signature-params": ("@path" "@query")',
    );
  });

  test('a covered header that is missing, or covered twice, is an error', () => {
    const message = { method: 'GET', authority: 'a', target: '/', headers: {} };
    assert.throws(
      () => signatureBase(message, { components: ['content-digest'], params: [] }),
      HttpSignatureError,
    );
    assert.throws(
      () => signatureBase(message, { components: ['@path', '@path'], params: [] }),
      HttpSignatureError,
    );
  });
});

describe('RFC 9530 content digest', () => {
  test('sha-256 of the RFC 9530 example body', () => {
    assert.equal(
      contentDigest('{"hello": "world"}'),
      'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:',
    );
  });
  test('a body that does not match its digest is told apart', () => {
    const header = contentDigest('{"a":1}');
    assert.equal(contentDigestMatches(header, Buffer.from('{"a":1}')), true);
    assert.equal(contentDigestMatches(header, Buffer.from('{"a":2}')), false);
    assert.equal(contentDigestMatches('sha-512=:AAAA:', Buffer.from('{"a":1}')), false);
    assert.equal(contentDigestMatches(undefined, Buffer.from('')), false);
  });
});

describe('signing agent requests', () => {
  const node = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  test('a signed request parses back and verifies with the node key, and only with it', () => {
    const message = { method: 'POST', authority: 'muster.example:8443', target: '/v1/agent/heartbeat' };
    const headers = signRequest(message, '{"seq":1}', node.privateKey, 'ab12', 1_700_000_000_123);
    const input = parseSignatureInput(headers['signature-input']);
    assert.deepEqual(input.components, [...SIGNED_COMPONENTS]);
    assert.equal(signatureParam(input, 'created'), 1_700_000_000);
    assert.equal(signatureParam(input, 'keyid'), 'ab12');
    assert.match(String(signatureParam(input, 'nonce')), /^[A-Za-z0-9_-]{22}$/);
    assert.equal(serializeSignatureInput(input), headers['signature-input'].slice('muster='.length));
    const base = signatureBase({ ...message, headers }, input);
    const signature = parseSignature(headers.signature);
    assert.equal(verifyBase(base, signature, node.publicKey), true);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal(verifyBase(base, signature, other.publicKey), false);
  });
  test('a malformed Signature-Input is an error, not a crash', () => {
    for (const bad of [
      undefined,
      'muster=',
      'muster=("@path";created=1',
      'muster=("@path");created=x',
      'other=()',
    ])
      assert.throws(() => parseSignatureInput(bad), HttpSignatureError);
    assert.throws(() => parseSignature('muster=abc'), HttpSignatureError);
  });
});
