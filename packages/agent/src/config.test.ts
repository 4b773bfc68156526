import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '@muster/host';
import { agentConfigFrom, DEFAULT_RENEW_FRACTION, readAgentSettings } from './config.js';

test('the renewal fraction defaults to 0.67 and takes any number strictly between 0 and 1', () => {
  assert.equal(agentConfigFrom({}, undefined).renewFraction, DEFAULT_RENEW_FRACTION);
  assert.equal(DEFAULT_RENEW_FRACTION, 0.67);
  for (const [text, value] of [
    ['0.5', 0.5],
    ['.9', 0.9],
    ['0.001', 0.001],
    ['0.999', 0.999],
  ] as const) {
    assert.equal(agentConfigFrom({ 'renew-fraction': text }, undefined).renewFraction, value);
  }
});

test('a renewal fraction of 0, 1, -1, abc or anything else outside (0, 1) is refused with a clear message', () => {
  for (const text of ['0', '1', '-1', 'abc', '', '1.5', '0.5e0', 'NaN', 'Infinity', '0x1', ' ']) {
    assert.throws(
      () => agentConfigFrom({ 'renew-fraction': text }, undefined),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.length === 1 &&
        err.problems[0] ===
          `--renew-fraction: "${text}" must be a number strictly between 0 and 1, such as 0.67 (renew after two thirds of the lifetime)`,
      text,
    );
  }
});

test('--rekey is off unless asked for', () => {
  assert.equal(agentConfigFrom({}, undefined).rekey, false);
  assert.equal(agentConfigFrom({ rekey: true }, undefined).rekey, true);
});

test('--server is repeatable: every URL kept in order, the first also the enrollment server; duplicates once', () => {
  const config = agentConfigFrom(
    { server: ['https://a.test:8443', 'https://b.test:8443/', 'https://a.test:8443'] },
    undefined,
  );
  assert.equal(config.server?.origin, 'https://a.test:8443');
  assert.deepEqual(
    config.servers?.map((u) => u.origin),
    ['https://a.test:8443', 'https://b.test:8443'],
  );
});

test('a --server that is not an https:// URL is refused, each one named', () => {
  assert.throws(
    () => agentConfigFrom({ server: ['https://a.test:8443', 'http://b.test:8443', 'nope'] }, undefined),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.join('\n') ===
        '--server: "http://b.test:8443" must be an https:// URL\n--server: "nope" is not a URL',
  );
});

test('readAgentSettings takes a config file below flags and the environment, and lists every problem at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'muster-agent-config-'));
  try {
    const file = join(dir, 'agent.toml');
    await writeFile(file, 'server = ["https://a.test:8443"]\nname = "from-file"\nprofile = "web"\n');
    const read = readAgentSettings(['--name', 'from-flag'], {
      MUSTER_AGENT_CONFIG: file,
      MUSTER_PROFILE: 'db',
    });
    assert.deepEqual(read.problems, []);
    assert.deepEqual(
      [read.values.name, read.values.profile, read.values.server],
      ['from-flag', 'db', ['https://a.test:8443']],
    );
    assert.deepEqual(
      [read.sources.name, read.sources.profile, read.sources.server],
      ['flag', 'env:MUSTER_PROFILE', `file:${file}`],
    );
    await writeFile(file, 'token = "mjt_x"\nrenew-fraction = "7"\n');
    assert.deepEqual(readAgentSettings(['--config', file, '--bogus'], {}).problems, [
      'unknown flag --bogus',
      `${file}: token is a secret and is not written in the config file; put it in a file of its own and set token-file to its path`,
      '--renew-fraction: "7" must be a number strictly between 0 and 1, such as 0.67 (renew after two thirds of the lifetime)',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
