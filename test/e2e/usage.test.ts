import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { describeResult, Sandbox } from '../support/sandbox.js';

/** Runs `jobs` at most `limit` at a time: each is a process, and the machine is shared. */
async function pool<T, R>(items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await job(items[i]!);
      }
    }),
  );
  return results;
}

// What `muster --help` lists: every verb, as a user finds them.
function verbsOf(help: string): string[][] {
  return [...help.matchAll(/^ {2}muster ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?= |$)/gm)].map((m) =>
    m[1]!.split(' '),
  );
}

describe('usage and exit codes of the muster binary', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('every verb group prints its usage: on stdout with exit 0 for --help and -h, on stderr with exit 2 alone or with an unknown word', async () => {
    const help = await sandbox.run(['--help']);
    assert.equal(help.code, 0, describeResult(help));
    const verbs = verbsOf(help.stdout);
    // A word that is a verb itself (`muster agent`, with `muster agent request`) is not a group.
    const groups = [...new Set(verbs.filter((v) => v.length > 1).map((v) => v[0]!))].filter(
      (g) => !verbs.some((v) => v.length === 1 && v[0] === g),
    );
    for (const expected of ['nodes', 'token', 'ca', 'policy', 'operator', 'commands', 'ledger', 'root']) {
      assert.ok(groups.includes(expected), `muster --help lists the ${expected} group:\n${help.stdout}`);
    }
    const cases = groups.flatMap((group) => [
      { group, args: [group, '--help'], code: 0 },
      { group, args: [group, '-h'], code: 0 },
      { group, args: [group], code: 2 },
      { group, args: [group, 'nosuch'], code: 2 },
    ]);
    const results = await pool(cases, 3, (c) => sandbox.run(c.args));
    cases.forEach((c, i) => {
      const result = results[i]!;
      const what = `muster ${c.args.join(' ')}: ${describeResult(result)}`;
      assert.equal(result.code, c.code, what);
      const usage = c.code === 0 ? result.stdout : result.stderr;
      assert.match(usage, new RegExp(`^Usage: muster ${c.group} <`, 'm'), what);
      for (const verb of verbs.filter((v) => v[0] === c.group && v.length > 1)) {
        assert.ok(usage.includes(`muster ${verb.join(' ')}`), `${what}\nlacks ${verb.join(' ')}`);
      }
      assert.doesNotMatch(usage, /unknown subcommand "(--help|-h|)"/, what);
      if (c.code === 0) assert.equal(result.stderr, '', what);
      else assert.equal(result.stdout, '', what);
    });
    const bare = results[cases.findIndex((c) => c.args.length === 1)]!;
    assert.match(bare.stderr, /: expected a subcommand/);
    const unknown = results[cases.findIndex((c) => c.args[1] === 'nosuch')]!;
    assert.match(unknown.stderr, /: unknown subcommand "nosuch"/);
  });

  test('every verb answers --help with exit 0 and a usage line naming it', async () => {
    const verbs = verbsOf((await sandbox.run(['--help'])).stdout);
    assert.ok(verbs.length >= 30, `found ${verbs.length} verbs`);
    const results = await pool(verbs, 3, (verb) => sandbox.run([...verb, '--help']));
    verbs.forEach((verb, i) => {
      const result = results[i]!;
      const what = `muster ${verb.join(' ')} --help: ${describeResult(result)}`;
      assert.equal(result.code, 0, what);
      assert.match(result.stdout, new RegExp(`^Usage: muster ${verb.join(' ')}\\b`), what);
    });
  });

  test('-v and --version print the version, -h the general help; nothing at all is a usage error', async () => {
    const [short, long, h, none] = await Promise.all([
      sandbox.run(['-v']),
      sandbox.run(['--version']),
      sandbox.run(['-h']),
      sandbox.run([]),
    ]);
    assert.equal(short.code, 0, describeResult(short));
    assert.match(short.stdout, /^\d+\.\d+\.\d+/);
    assert.equal(short.stdout, long.stdout);
    assert.equal(h.code, 0, describeResult(h));
    assert.match(h.stdout, /^Usage: muster <command>/m);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: muster <command>/m);
  });

  test('muster bench with an unknown scenario is a usage error that lists every scenario of the registry', async () => {
    const specifier = '@muster/bench';
    const { SCENARIOS } = (await import(specifier)) as { SCENARIOS: Record<string, unknown> };
    const names = Object.keys(SCENARIOS);
    assert.ok(names.includes('fanout'));
    const result = await sandbox.run(['bench', 'nosuch']);
    assert.equal(result.code, 2, describeResult(result));
    const listed = /unknown scenario "nosuch"; one of: (.+)$/m.exec(result.stderr)?.[1]?.split(', ');
    assert.deepEqual(listed, names, result.stderr);
    const help = await sandbox.run(['bench', '--help']);
    for (const name of names) assert.match(help.stdout, new RegExp(`^ {2}${name} `, 'm'));
  });

  test('a bad --url is a usage error that names the flag and the value', async () => {
    for (const args of [
      ['nodes', 'ls', '--url', 'notaurl'],
      ['token', 'create', '--url', 'ftp://example'],
    ]) {
      const result = await sandbox.run(args);
      assert.equal(result.code, 2, describeResult(result));
      assert.match(result.stderr, new RegExp(`--url: not a URL: "${args[3]}"`));
      assert.doesNotMatch(result.stderr, /Invalid URL/);
    }
  });

  test('token create --ttl beyond 30 days is refused before anything is sent, in days', async () => {
    // Nothing listens here: a refusal that named the connection would mean the request was tried.
    const url = 'http://127.0.0.1:9';
    const long = await sandbox.run(['token', 'create', '--ttl', '60d', '--url', url, '--token', 'x']);
    assert.equal(long.code, 2, describeResult(long));
    assert.match(long.stderr, /^muster token create: --ttl: at most 30 d$/m);
    assert.doesNotMatch(long.stderr, /ttlSec|2592000|cannot reach/);
    const short = await sandbox.run(['token', 'create', '--ttl', '100ms', '--url', url, '--token', 'x']);
    assert.equal(short.code, 2, describeResult(short));
    assert.match(short.stderr, /--ttl: at least 1 s/);
  });

  test('muster server lists every bad flag, variable and value at once, and exits 2', async () => {
    const result = await sandbox.run(
      ['server', '--listen', 'nope', '--cert-lifetime', '-1', '--log-level', 'loud', '--lissen', 'x:1'],
      { MUSTER_DB: 'postgres://u:secret@db/muster', MUSTER_DATA_DIR: sandbox.tempDir('never') },
    );
    assert.equal(result.code, 2, describeResult(result));
    const problems = result.stderr.split('\n').filter((l) => l.startsWith('  - '));
    assert.equal(problems.length, 5, result.stderr);
    assert.match(result.stderr, /unknown flag --lissen/);
    assert.match(result.stderr, /--listen: "nope" is not HOST:PORT/);
    assert.match(result.stderr, /--cert-lifetime: "-1" is not a duration/);
    assert.match(result.stderr, /--log-level: "loud" is not one of/);
    assert.match(result.stderr, /MUSTER_DB must not hold a secret/);
    assert.doesNotMatch(result.stderr, /secret@db/);
  });

  test('muster demo lists every bad value at once too', async () => {
    const result = await sandbox.run([
      'demo',
      '--data-dir',
      sandbox.tempDir('never'),
      '--admin-listen',
      'nope',
      '--heartbeat-interval',
      'often',
    ]);
    assert.equal(result.code, 2, describeResult(result));
    assert.match(result.stderr, /--admin-listen: "nope" is not HOST:PORT/);
    assert.match(result.stderr, /--heartbeat-interval: "often" is not a duration/);
  });
});
