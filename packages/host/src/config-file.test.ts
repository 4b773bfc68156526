import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSettings, formatSettingsInForce, readConfigFile } from './config-file.js';
import { defaultOf, formatSettingsHelp, readSettings, type SettingSpec, settingHelp } from './settings.js';

const SPECS: SettingSpec[] = [
  ...configSettings('T_CONFIG', 'listen = "0.0.0.0:1"'),
  {
    flag: 'listen',
    env: 'T_LISTEN',
    kind: 'string',
    value: 'HOST:PORT',
    default: '127.0.0.1:1',
    help: 'where',
  },
  { flag: 'admin-listen', env: 'T_ADMIN_LISTEN', kind: 'string', help: 'admin (default: the listen host)' },
  { flag: 'verbose', env: 'T_VERBOSE', kind: 'boolean', help: 'say more' },
  { flag: 'san', env: 'T_SANS', kind: 'list', help: 'names' },
  { flag: 'db', env: 'T_DB', kind: 'string', secret: true, help: 'store' },
  { flag: 'token-file', kind: 'string', help: 'token file' },
  { flag: 'token', kind: 'string', secret: true, help: 'token' },
];

describe('config files', () => {
  let dir: string;
  let n = 0;
  const file = async (text: string) => {
    const path = join(dir, `c${n++}.toml`);
    await writeFile(path, text);
    return path;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-config-file-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('keys are the long flags: strings, booleans, arrays for repeatable flags, secrets from *-file', async () => {
    const secret = join(dir, 'db.url');
    await writeFile(secret, 'postgres://u:pw@db/m\n');
    const path = await file(
      `listen = "0.0.0.0:9"\nverbose = true\nsan = ["a.example", "b.example"]\ndb-file = "${secret}"\ntoken-file = "/etc/t"\n`,
    );
    assert.deepEqual(readConfigFile(path, SPECS), {
      values: {
        listen: '0.0.0.0:9',
        verbose: true,
        san: ['a.example', 'b.example'],
        db: 'postgres://u:pw@db/m',
        'token-file': '/etc/t',
      },
      problems: [],
    });
  });

  test('a number where text is wanted stands for its text, to be judged by the setting itself', async () => {
    const path = await file('listen = 8443\n');
    assert.deepEqual(readConfigFile(path, SPECS), { values: { listen: '8443' }, problems: [] });
    const secret = await file('db-file = 5\n');
    assert.match(readConfigFile(secret, SPECS).problems[0]!, /db-file must be a string, not a number/);
  });

  test('flags beat the environment, which beats the file; each value says where it came from', async () => {
    const path = await file('listen = "10.0.0.1:1"\nadmin-listen = "10.0.0.1:2"\nsan = ["f"]\n');
    const env = { T_LISTEN: '10.0.0.2:1', T_ADMIN_LISTEN: '10.0.0.2:2', T_CONFIG: path };
    const read = readSettings(SPECS, ['--listen', '10.0.0.3:1'], env);
    assert.deepEqual(read.problems, []);
    assert.deepEqual(read.values, {
      config: path,
      listen: '10.0.0.3:1',
      'admin-listen': '10.0.0.2:2',
      san: ['f'],
    });
    assert.deepEqual(read.sources, {
      config: 'env:T_CONFIG',
      listen: 'flag',
      'admin-listen': 'env:T_ADMIN_LISTEN',
      san: `file:${path}`,
    });
    // --config beats the variable naming another file.
    const other = await file('admin-listen = "10.0.0.4:2"\n');
    const flagged = readSettings(SPECS, ['--config', other], { T_CONFIG: path });
    assert.equal(flagged.values['admin-listen'], '10.0.0.4:2');
    assert.equal(flagged.sources.config, 'flag');
  });

  test('every bad key is one line naming the file and the key, all reported at once', async () => {
    const path = await file(
      [
        'lisen = "x"',
        'listen = true',
        'san = "a.example"',
        'verbose = "yes"',
        'db = "postgres://u:pw@db/m"',
        'token = "mjt_secret"',
        'T_ADMIN_LISTEN = "x"',
        'config = "other.toml"',
        'san2 = [1]',
        '[admin]',
        'listen = "x"',
      ].join('\n'),
    );
    const { problems } = readConfigFile(path, SPECS);
    assert.deepEqual(problems, [
      `${path}: unknown key "lisen" (did you mean listen?)`,
      `${path}: listen must be a string, not a boolean: listen = "true"`,
      `${path}: san must be an array of strings, not a string: san = ["a.example"]`,
      `${path}: verbose must be true or false, not a string: verbose = true`,
      `${path}: db is a secret and is not written in the config file; put it in a file of its own and set db-file to its path`,
      `${path}: token is a secret and is not written in the config file; put it in a file of its own and set token-file to its path`,
      `${path}: unknown key "T_ADMIN_LISTEN" (did you mean admin-listen?)`,
      `${path}: config is not read from a config file`,
      `${path}: unknown key "san2" (did you mean san?)`,
      `${path}: unknown key "admin"`,
    ]);
    assert.ok(!problems.join('\n').includes('pw@db'), 'a secret written inline is not echoed');
    assert.ok(!problems.join('\n').includes('mjt_secret'), 'a secret written inline is not echoed');
  });

  test('an array holding other than strings is refused', async () => {
    const path = await file('san = ["a", 2]\n');
    assert.deepEqual(readConfigFile(path, SPECS).problems, [
      `${path}: san must be an array of strings, not an array holding other than strings: san = ["A", "B"]`,
    ]);
  });

  test('bad TOML names the file, line and column; a missing file or secret file names the file', async () => {
    const path = await file('listen = "127.0.0.1:1"\nsan = ["a",\n');
    const [problem, ...rest] = readConfigFile(path, SPECS).problems;
    assert.deepEqual(rest, []);
    assert.match(problem!, new RegExp(`^${path}:3:1: not valid TOML: \\S`));
    const missing = join(dir, 'missing.toml');
    assert.deepEqual(readConfigFile(missing, SPECS).problems, [
      `${missing}: cannot read the config file (ENOENT)`,
    ]);
    const badSecret = await file(`db-file = "${join(dir, 'nope')}"\n`);
    assert.deepEqual(readConfigFile(badSecret, SPECS).problems, [
      `${badSecret}: db-file: cannot read ${join(dir, 'nope')} (ENOENT)`,
    ]);
  });

  test('problems of the file come with those of flags and variables', async () => {
    const path = await file('lisen = "x"\n');
    const { problems } = readSettings(
      SPECS,
      ['--config', path, '--bogus'],
      { T_VERBOSE: 'maybe' },
      {
        flagsAsProblems: true,
      },
    );
    assert.deepEqual(problems, [
      'unknown flag --bogus',
      'T_VERBOSE: expected true or false, got "maybe"',
      `${path}: unknown key "lisen" (did you mean listen?)`,
    ]);
  });
});

describe('--print-config', () => {
  test('shows every setting in force with its source, never a secret', () => {
    const text = formatSettingsInForce(
      SPECS,
      { config: '/etc/m.toml', listen: '0.0.0.0:9', san: ['a', 'b'], db: 'postgres://u:pw@db/m' },
      { config: 'flag', listen: 'file:/etc/m.toml', san: 'env:T_SANS', db: 'env:T_DB_FILE' },
    );
    assert.equal(
      text,
      [
        '# config file /etc/m.toml (--config)',
        'listen = "0.0.0.0:9"  # file:/etc/m.toml',
        '# admin-listen is not set (default: the listen host)',
        'verbose = false       # default',
        'san = ["a", "b"]      # env:T_SANS',
        'db = "(redacted)"     # env:T_DB_FILE',
        '# token-file is not set',
        '# token is not set',
        '',
      ].join('\n'),
    );
    assert.match(
      formatSettingsInForce(SPECS, {}, {}),
      /^# no config file\nlisten = "127\.0\.0\.1:1" +# default$/m,
    );
  });
});

describe('defaults in the spec', () => {
  test('--help shows the default the spec gives, unless the help says it already', () => {
    assert.equal(settingHelp(SPECS[2]!), 'where (default 127.0.0.1:1)');
    assert.equal(
      settingHelp({ ...SPECS[2]!, help: 'where (default: elsewhere)' }),
      'where (default: elsewhere)',
    );
    assert.match(
      formatSettingsHelp(SPECS),
      /--listen HOST:PORT\s+where \(default 127\.0\.0\.1:1\) \[T_LISTEN\]/,
    );
    assert.equal(defaultOf(SPECS, 'listen'), '127.0.0.1:1');
    assert.throws(() => defaultOf(SPECS, 'admin-listen'), /--admin-listen has no default/);
  });
});
