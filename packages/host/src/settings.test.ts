import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, formatSettingsHelp, readSettings, type SettingSpec, UsageError } from './settings.js';

const SPECS: SettingSpec[] = [
  { flag: 'data-dir', env: 'T_DATA_DIR', kind: 'string', value: 'DIR', help: 'where data lives', short: 'd' },
  { flag: 'verbose', env: 'T_VERBOSE', kind: 'boolean', help: 'say more' },
  { flag: 'label', env: 'T_LABELS', kind: 'list', value: 'K=V', help: 'labels' },
  { flag: 'token', env: 'T_TOKEN', kind: 'string', secret: true, value: 'TOKEN', help: 'join token' },
  { flag: 'no-env', kind: 'string', help: 'flag only' },
];

describe('readSettings', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-settings-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reads flags of each kind, and positionals', () => {
    const { values, positionals, problems } = readSettings(
      SPECS,
      ['run', '-d', '/data', '--verbose', '--label', 'a=1', '--label', 'b=2', '--no-env', 'x'],
      {},
    );
    assert.deepEqual(values, { 'data-dir': '/data', verbose: true, label: ['a=1', 'b=2'], 'no-env': 'x' });
    assert.deepEqual(positionals, ['run']);
    assert.deepEqual(problems, []);
  });

  test('a flag wins over the environment, which wins over nothing', () => {
    const env = { T_DATA_DIR: '/from-env', T_VERBOSE: '1', T_LABELS: ' a=1, ,b=2 ' };
    assert.deepEqual(readSettings(SPECS, [], env).values, {
      'data-dir': '/from-env',
      verbose: true,
      label: ['a=1', 'b=2'],
    });
    assert.equal(readSettings(SPECS, ['--data-dir', '/flag'], env).values['data-dir'], '/flag');
    assert.deepEqual(readSettings(SPECS, [], { T_DATA_DIR: '' }).values, {}, 'an empty variable is unset');
  });

  test('booleans in the environment are true/false/1/0, anything else is a problem', () => {
    assert.equal(readSettings(SPECS, [], { T_VERBOSE: 'false' }).values.verbose, false);
    assert.equal(readSettings(SPECS, [], { T_VERBOSE: '0' }).values.verbose, false);
    assert.equal(readSettings(SPECS, [], { T_VERBOSE: 'true' }).values.verbose, true);
    assert.deepEqual(readSettings(SPECS, [], { T_VERBOSE: 'yes' }).problems, [
      'T_VERBOSE: expected true or false, got "yes"',
    ]);
  });

  test('a secret is read only from its *_FILE, trimmed, and never from a literal variable', async () => {
    const file = join(dir, 'token');
    await writeFile(file, 'mjt_secret\n');
    assert.equal(readSettings(SPECS, [], { T_TOKEN_FILE: file }).values.token, 'mjt_secret');
    const literal = readSettings(SPECS, [], { T_TOKEN: 'mjt_literal' });
    assert.equal(literal.values.token, undefined);
    assert.equal(literal.problems.length, 1);
    assert.match(
      literal.problems[0]!,
      /^T_TOKEN must not hold a secret; put it in a file and set T_TOKEN_FILE/,
    );
    assert.ok(!literal.problems[0]!.includes('mjt_literal'), 'the secret is not echoed');
  });

  test('a *_FILE that cannot be read is a problem that names the file, not its content', () => {
    const missing = join(dir, 'missing');
    assert.deepEqual(readSettings(SPECS, [], { T_DATA_DIR_FILE: missing }).problems, [
      `T_DATA_DIR_FILE: cannot read ${missing} (ENOENT)`,
    ]);
  });

  test('every problem is collected, not only the first', () => {
    const { problems } = readSettings(SPECS, [], {
      T_VERBOSE: 'maybe',
      T_TOKEN: 'x',
      T_DATA_DIR_FILE: join(dir, 'nope'),
    });
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  test('an unknown flag or a flag without its value is a usage error in one short sentence', () => {
    assert.throws(
      () => readSettings(SPECS, ['--bogus'], {}),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /--bogus/);
        assert.ok(!err.message.includes('. '), err.message);
        return true;
      },
    );
    assert.throws(() => readSettings(SPECS, ['--data-dir'], {}), UsageError);
    assert.throws(() => readSettings(SPECS, ['--data-dir', '--verbose'], {}), UsageError);
  });

  test('with flagsAsProblems, unknown and misused flags are problems listed with the rest', () => {
    const { values, positionals, problems } = readSettings(
      SPECS,
      ['--bogus', 'its-value', '--data-dir', '/d', '-x', '--verbose=yes', 'arg', '--no-env'],
      { T_VERBOSE: 'maybe' },
      { flagsAsProblems: true },
    );
    assert.deepEqual(values, { 'data-dir': '/d' });
    assert.deepEqual(positionals, ['arg'], 'the word after an unknown flag is taken as its value');
    assert.deepEqual(problems, [
      'unknown flag --bogus',
      'unknown flag -x',
      '--verbose takes no value',
      '--no-env needs a value',
      'T_VERBOSE: expected true or false, got "maybe"',
    ]);
  });

  test('a dash-leading word after a flag that takes a value is its value, to be judged with the rest', () => {
    const { values } = readSettings(SPECS, ['--data-dir', '-1', '--label', '-x=1', '--verbose'], {});
    assert.deepEqual(values, { 'data-dir': '-1', label: ['-x=1'], verbose: true });
    assert.deepEqual(readSettings(SPECS, ['--', '--data-dir', '-1'], {}).positionals, ['--data-dir', '-1']);
  });
});

describe('formatSettingsHelp', () => {
  test('shows each flag with its placeholder and where else it can come from', () => {
    const help = formatSettingsHelp(SPECS);
    assert.match(help, /--data-dir DIR\s+where data lives \[T_DATA_DIR\]/);
    assert.match(help, /--verbose\s+say more \[T_VERBOSE\]/);
    assert.match(help, /--token TOKEN\s+join token \[T_TOKEN_FILE\]/);
    assert.match(help, /--no-env VALUE\s+flag only$/m);
  });

  test('puts the text of a very long flag on its own line', () => {
    const help = formatSettingsHelp([
      { flag: 'a-very-long-flag-name-indeed-really', kind: 'string', value: 'SOMETHING', help: 'h' },
      { flag: 'x', kind: 'boolean', help: 'short' },
    ]);
    const lines = help.split('\n');
    assert.equal(lines[0], '  --a-very-long-flag-name-indeed-really SOMETHING');
    assert.match(lines[1]!, /^\s{10,}h$/);
  });
});

describe('ConfigError', () => {
  test('lists one problem inline and several as a list', () => {
    assert.equal(new ConfigError(['a is bad']).message, 'invalid configuration: a is bad');
    assert.equal(new ConfigError(['a', 'b']).message, 'invalid configuration:\n  - a\n  - b');
  });
});
