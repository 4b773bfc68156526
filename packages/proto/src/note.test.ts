import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { leafHash } from './merkle.js';
import {
  checkpointBody,
  NoteError,
  noteKeyId,
  openCheckpoint,
  parseVerifierKey,
  rawEd25519,
  signNote,
  verifierKey,
} from './note.js';

const keys = () => generateKeyPairSync('ed25519');

test('a checkpoint signed here opens with its verifier key, in the C2SP layout', () => {
  const { privateKey, publicKey } = keys();
  const name = 'muster.local/ledger';
  const cp = { origin: name, size: 42, root: leafHash('x') };
  const note = signNote(checkpointBody(cp), name, privateKey, publicKey);
  const lines = note.split('\n');
  assert.equal(lines[0], name);
  assert.equal(lines[1], '42');
  assert.equal(lines[2], cp.root.toString('base64'));
  assert.equal(lines[3], '');
  assert.match(lines[4]!, /^\u2014 muster\.local\/ledger [A-Za-z0-9+/]+=*$/);
  const sig = Buffer.from(lines[4]!.split(' ')[2]!, 'base64');
  assert.equal(sig.length, 68);
  assert.deepEqual(sig.subarray(0, 4), noteKeyId(name, rawEd25519(publicKey)));

  const vkey = verifierKey(name, publicKey);
  assert.match(vkey, /^muster\.local\/ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
  const opened = openCheckpoint(note, parseVerifierKey(vkey));
  assert.equal(opened.size, 42);
  assert.deepEqual(opened.root, cp.root);
});

test('a changed size, root or signature, or another key, is refused', () => {
  const { privateKey, publicKey } = keys();
  const name = 'log';
  const verifier = parseVerifierKey(verifierKey(name, publicKey));
  const note = signNote(
    checkpointBody({ origin: name, size: 7, root: leafHash('r') }),
    name,
    privateKey,
    publicKey,
  );
  assert.throws(() => openCheckpoint(note.replace('\n7\n', '\n8\n'), verifier), NoteError);
  const sigLine = note.split('\n')[4]!;
  const sig = Buffer.from(sigLine.split(' ')[2]!, 'base64');
  sig[10]! ^= 1;
  assert.throws(
    () => openCheckpoint(note.replace(sigLine, `\u2014 ${name} ${sig.toString('base64')}`), verifier),
    NoteError,
  );
  const other = keys();
  assert.throws(
    () => openCheckpoint(note, parseVerifierKey(verifierKey(name, other.publicKey))),
    /no signature by log/,
  );
  assert.throws(() => parseVerifierKey('log+00000000+AAAA'), NoteError);
});
