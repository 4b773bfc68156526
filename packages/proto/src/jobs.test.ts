import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { formatBytes, JOB_CONTEXT, Job, jobSignatureValid, parseBytes, signJob } from './jobs.js';
import { formatPublicKey, signCommand } from './signatures.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => Number.isFinite(Date.parse(v)));

const job: Job = {
  v: 1,
  id: 'job-00000001',
  nonce: 'n'.repeat(22),
  issuedAt: '2026-12-01T12:00:00.000Z',
  expiresAt: '2026-12-01T13:00:00.000Z',
  operator: 'alice',
  action: 'backup',
  args: { target: 'db' },
  select: { labels: { env: 'prod' } },
  count: 2,
  require: { minFreeDiskBytes: { mount: '/var', bytes: 10 * 2 ** 30 } },
  spread: 'zone',
};

test('a job is signed over muster-job-v1 and its canonical JSON, and nothing else verifies as it', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = formatPublicKey(publicKey);
  const signature = signJob(job, privateKey);
  assert.equal(JOB_CONTEXT, 'muster-job-v1\n');
  assert.ok(jobSignatureValid(job, signature, key));
  // Key order does not matter: the canonical form is what is signed.
  const reordered = Object.fromEntries(Object.entries(job).reverse()) as Job;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(job));
  assert.ok(jobSignatureValid(reordered, signature, key));
  assert.ok(!jobSignatureValid({ ...job, count: 3 }, signature, key));
  // The same object signed as a command is not a job signature.
  const asCommand = signCommand(job as never, privateKey);
  assert.ok(!jobSignatureValid(job, asCommand, key));
});

test('the job schema is closed: unknown fields and requirement keys are refused', () => {
  assert.ok(Value.Check(Job, job));
  assert.ok(!Value.Check(Job, { ...job, priority: 1 }));
  assert.ok(!Value.Check(Job, { ...job, require: { minFreeGpus: 1 } }));
  assert.ok(
    !Value.Check(Job, { ...job, require: { minFreeDiskBytes: { mount: '/var', bytes: 1, fs: 'ext4' } } }),
  );
  assert.ok(!Value.Check(Job, { ...job, weights: { fit: 1, cost: 0, history: 0, spread: 1 } }));
  assert.ok(!Value.Check(Job, { ...job, count: 0 }));
});

test('sizes read and print with their units', () => {
  assert.equal(parseBytes('4GiB'), 4 * 2 ** 30);
  assert.equal(parseBytes('10GB'), 10e9);
  assert.equal(parseBytes('512'), 512);
  assert.equal(parseBytes('-4GiB'), undefined);
  assert.equal(parseBytes('4 parsecs'), undefined);
  assert.equal(formatBytes(1.2 * 2 ** 30), '1.2 GiB');
  assert.equal(formatBytes(4 * 2 ** 30), '4 GiB');
  assert.equal(formatBytes(512), '512 B');
});
