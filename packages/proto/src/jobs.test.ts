import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { formatBytes, JOB_CONTEXT, Job, jobSignatureValid, parseBytes, signJob } from './jobs.js';
import { nextCronTime, parseCron } from './jobs-cron.js';
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

test('cron: steps, ranges, and either day field when both are given', () => {
  const at = (iso: string) => Date.parse(iso);
  const next = (expr: string, from: string) => {
    const t = nextCronTime(parseCron(expr), at(from), at(from) + 40 * 86_400_000);
    return t === undefined ? undefined : new Date(t).toISOString();
  };
  assert.equal(next('*/15 * * * *', '2026-12-01T12:07:30Z'), '2026-12-01T12:15:00.000Z');
  assert.equal(next('0 3 * * *', '2026-12-01T12:00:00Z'), '2026-12-02T03:00:00.000Z');
  // 2026-12-01 is a Tuesday: "the 15th or any Friday" fires on Friday the 4th.
  assert.equal(next('0 0 15 * 5', '2026-12-01T12:00:00Z'), '2026-12-04T00:00:00.000Z');
  assert.equal(next('30 9 1-5 1 *', '2026-12-01T00:00:00Z'), '2027-01-01T09:30:00.000Z');
  assert.throws(() => parseCron('*/0 * * * *'), /step of 0/);
  assert.throws(() => parseCron('0 24 * * *'), /hour "24" is outside 0-23/);
  assert.throws(() => parseCron('0 0 * * MON'), /day of week "MON" is not a number/);
});
