import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, assertHealthy, waitForNode } from '../support/fleet.js';
import { closedPort } from '../support/ports.js';
import { REPO_ROOT } from '../support/processes.js';
import { assertNoStackTrace, type CliResult, describeResult, Sandbox } from '../support/sandbox.js';

// `--config FILE` as an operator uses it: a server and an agent started from TOML files by the
// real `muster` binary, what `--print-config` says is in force, and every bad file refused.

/** A usage error of `muster VERB`: exit 2, one line naming the file and the key, where to read more. */
function assertRefused(result: CliResult, verb: string, problem: string): void {
  assert.equal(result.code, 2, describeResult(result));
  assert.equal(
    result.stderr,
    `muster ${verb}: invalid configuration: ${problem}\nSee: muster ${verb} --help\n`,
    describeResult(result),
  );
  assert.equal(result.stdout, '');
  assertNoStackTrace(result.stderr);
}

/** The `KEY = VALUE  # SOURCE` line --print-config prints for a key. */
function printed(stdout: string, key: string): { value: string; source: string } | undefined {
  const match = new RegExp(`^${key} = (.*?) +# (\\S+)$`, 'm').exec(stdout);
  return match ? { value: match[1]!, source: match[2]! } : undefined;
}

describe('config files', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  const write = (name: string, text: string): string => {
    const path = join(sandbox.tempDir('config'), name);
    writeFileSync(path, text);
    return path;
  };

  test("README's server.toml and agent.toml are taken as they are written", async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```toml\n(# (server|agent)\.toml:[\s\S]*?)```/g)];
    assert.deepEqual(
      blocks.map((b) => b[2]),
      ['server', 'agent'],
      'README has a server.toml and an agent.toml example',
    );
    for (const [, text, role] of blocks) {
      const toml = write(`${role}.toml`, text!);
      const result = await sandbox.run([role!, '--config', toml, '--print-config']);
      assert.equal(result.code, 0, describeResult(result));
      const fromFile = result.stdout.split('\n').filter((l) => l.endsWith(`# file:${toml}`));
      const keys = text!.split('\n').filter((l) => /^[a-z]/.test(l));
      assert.equal(
        fromFile.length,
        keys.length,
        `every key of README's ${role}.toml is in force:\n${result.stdout}`,
      );
    }
  });

  test('a server listens where its config file says, the environment beating the file; an agent enrolls from its own file', async () => {
    const [agentPort, filePort, envPort] = [await closedPort(), await closedPort(), await closedPort()];
    const dataDir = join(sandbox.tempDir('server'), 'data');
    const serverToml = write(
      'server.toml',
      [
        '# the agent plane and the admin plane, as an operator writes them',
        `listen = "127.0.0.1:${agentPort}"`,
        `admin-listen = "127.0.0.1:${filePort}"`,
        `data-dir = "${dataDir}"`,
        'heartbeat-interval = "1s"',
        'log-level = "warn"',
        'san = ["muster.test", "127.0.0.2"]',
        '',
      ].join('\n'),
    );
    const proc = sandbox.spawn(['server', '--config', serverToml], {
      MUSTER_ADMIN_LISTEN: `127.0.0.1:${envPort}`,
    });
    const [agentUrl, adminUrl] = await proc.waitForOutput('the server to print its URLs', (p) => {
      const agent = /^ {2}agent plane {2}(\S+)/m.exec(p.stdout)?.[1];
      const admin = /^ {2}admin API {4}(\S+)/m.exec(p.stdout)?.[1];
      return agent && admin ? [agent, admin] : undefined;
    });
    assert.equal(agentUrl, `https://127.0.0.1:${agentPort}`, 'listen from the file');
    assert.equal(adminUrl, `http://127.0.0.1:${envPort}`, 'MUSTER_ADMIN_LISTEN beats the file');
    assert.equal((await fetch(`${adminUrl}/healthz`)).status, 200);
    assert.ok(existsSync(join(dataDir, 'admin.token')), 'the data dir is the one the file names');
    const server = {
      process: proc,
      dataDir,
      agentUrl,
      adminUrl,
      adminFlags: ['--url', adminUrl, '--data-dir', dataDir],
    };

    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'cfg-1',
      ...server.adminFlags,
    ]);
    const flags = agentArgsFromJoinLine(token.agentCommand, agentUrl).slice(1);
    const flag = (name: string) => flags[flags.indexOf(name) + 1]!;
    const agentToml = write(
      'agent.toml',
      [
        `server = ["${agentUrl}"]`,
        `ca-pin = "${flag('--ca-pin')}"`,
        `root-pin = "${flag('--root-pin')}"`,
        `token-file = "${flag('--token-file')}"`,
        'name = "cfg-1"',
        `data-dir = "${join(sandbox.tempDir('agent'), 'state')}"`,
        'label = ["env=test", "team=config"]',
        'log-level = "warn"',
        '',
      ].join('\n'),
    );
    const agent = sandbox.spawn(['agent', '--config', agentToml]);
    const node = await waitForNode(sandbox, server, 'cfg-1', 'reports', (n) => n.lastSeenAt !== null).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${agent.transcript()}`);
      },
    );
    assertHealthy(node);
    assert.deepEqual(node.labels, { env: 'test', team: 'config' });
    await agent.stop();
    await proc.stop();
  });

  test('--print-config shows each setting in force and where it came from: flag beats env beats file beats default', async () => {
    const dataDir = join(sandbox.tempDir('never'), 'data');
    const dbUrl = write('db.url', 'postgres://muster:hunter2@db.test/muster\n');
    const toml = write(
      'server.toml',
      [
        'listen = "127.0.0.1:1001"',
        'admin-listen = "127.0.0.1:1002"',
        `data-dir = "${dataDir}"`,
        'cert-lifetime = "12h"',
        `db-file = "${dbUrl}"`,
        'admin-host = ["admin.test"]',
        '',
      ].join('\n'),
    );
    const result = await sandbox.run(['server', '--print-config', '--listen', '127.0.0.1:3001'], {
      MUSTER_CONFIG: toml,
      MUSTER_LISTEN: '127.0.0.1:2001',
      MUSTER_ADMIN_LISTEN: '127.0.0.1:2002',
    });
    assert.equal(result.code, 0, describeResult(result));
    assert.equal(result.stderr, '');
    const out = result.stdout;
    assert.match(out, new RegExp(`^# config file ${toml} \\(env:MUSTER_CONFIG\\)$`, 'm'));
    assert.deepEqual(printed(out, 'listen'), { value: '"127.0.0.1:3001"', source: 'flag' });
    assert.deepEqual(printed(out, 'admin-listen'), {
      value: '"127.0.0.1:2002"',
      source: 'env:MUSTER_ADMIN_LISTEN',
    });
    assert.deepEqual(printed(out, 'data-dir'), { value: JSON.stringify(dataDir), source: `file:${toml}` });
    assert.deepEqual(printed(out, 'cert-lifetime'), { value: '"12h"', source: `file:${toml}` });
    assert.deepEqual(printed(out, 'admin-host'), { value: '["admin.test"]', source: `file:${toml}` });
    assert.deepEqual(printed(out, 'heartbeat-interval'), { value: '"10s"', source: 'default' });
    assert.deepEqual(printed(out, 'db'), { value: '"(redacted)"', source: `file:${toml}` });
    assert.match(out, /^# public-url is not set \(default https:\/\/<listen or hostname>:<port>\)$/m);
    assert.doesNotMatch(out, /hunter2/, 'the secret is not printed');
    assert.equal(existsSync(dataDir), false, '--print-config starts nothing and writes nothing');

    // The variable holding a secret's file: named as the source, the secret still redacted.
    const fromEnv = await sandbox.run(['server', '--print-config', '--config', toml], {
      MUSTER_DB_FILE: dbUrl,
    });
    assert.deepEqual(printed(fromEnv.stdout, 'db'), { value: '"(redacted)"', source: 'env:MUSTER_DB_FILE' });
    assert.match(fromEnv.stdout, new RegExp(`^# config file ${toml} \\(--config\\)$`, 'm'));
  });

  test('a bad server config file is refused with exit 2 and one line naming the file and the key', async () => {
    const dataDir = join(sandbox.tempDir('never'), 'data');
    const cases: Array<[string, string]> = [
      ['lisen = "127.0.0.1:8443"\n', 'unknown key "lisen" (did you mean listen?)'],
      ['listen = true\n', 'listen must be a string, not a boolean: listen = "true"'],
      ['san = "muster.test"\n', 'san must be an array of strings, not a string: san = ["muster.test"]'],
      [
        'admin-behind-proxy = "yes"\n',
        'admin-behind-proxy must be true or false, not a string: admin-behind-proxy = true',
      ],
      [
        'db = "postgres://muster:hunter2@db.test/muster"\n',
        'db is a secret and is not written in the config file; put it in a file of its own and set db-file to its path',
      ],
      ['listen = "127.0.0.1:8443\nlog-level = "warn"\n', ':1:25: not valid TOML: '],
    ];
    for (const [text, problem] of cases) {
      const toml = write('server.toml', `data-dir = "${dataDir}"\n${text}`);
      const result = await sandbox.run(['server', '--config', toml]);
      if (problem.startsWith(':')) {
        // The parser's own words after the position; the position is the second line's.
        assert.equal(result.code, 2, describeResult(result));
        assert.match(
          result.stderr,
          new RegExp(
            `^muster server: invalid configuration: ${toml}:2:25: not valid TOML: [^\\n]+\\nSee: muster server --help\\n$`,
          ),
        );
        continue;
      }
      assertRefused(result, 'server', `${toml}: ${problem}`);
      assert.doesNotMatch(result.stderr, /hunter2/);
    }
    const missing = join(sandbox.tempDir('config'), 'nosuch.toml');
    assertRefused(
      await sandbox.run(['server', '--config', missing]),
      'server',
      `${missing}: cannot read the config file (ENOENT)`,
    );
    // The demo reads the server's settings, file included.
    const bad = write('server.toml', 'lisen = "x"\n');
    assertRefused(
      await sandbox.run(['demo', '--config', bad]),
      'demo',
      `${bad}: unknown key "lisen" (did you mean listen?)`,
    );
    // Every problem at once: the file's, a flag's and a value's.
    const several = write('server.toml', `data-dir = "${dataDir}"\nlisen = "x"\ncert-lifetime = "forever"\n`);
    const all = await sandbox.run(['server', '--config', several, '--bogus']);
    assert.equal(all.code, 2, describeResult(all));
    assert.equal(
      all.stderr,
      [
        'muster server: invalid configuration:',
        '  - unknown flag --bogus',
        `  - ${several}: unknown key "lisen" (did you mean listen?)`,
        '  - --cert-lifetime: "forever" is not a duration such as 30s, 10m or 24h',
        'See: muster server --help',
        '',
      ].join('\n'),
    );
    assert.equal(existsSync(dataDir), false, 'nothing is written for a refused configuration');
  });

  test('the agent: --print-config from its file, the token redacted, and each bad file refused', async () => {
    const dataDir = join(sandbox.tempDir('never'), 'agent');
    const toml = write(
      'agent.toml',
      [
        'server = ["https://a.test:8443", "https://b.test:8443"]',
        `ca-pin = "sha256:${'0'.repeat(64)}"`,
        `data-dir = "${dataDir}"`,
        'token-file = "/etc/muster/join-token"',
        'rekey = true',
        '',
      ].join('\n'),
    );
    const shown = await sandbox.run(['agent', '--print-config', '--token', 'mjt_literal'], {
      MUSTER_AGENT_CONFIG: toml,
      MUSTER_NODE_NAME: 'web-9',
    });
    assert.equal(shown.code, 0, describeResult(shown));
    const out = shown.stdout;
    assert.deepEqual(printed(out, 'server'), {
      value: '["https://a.test:8443", "https://b.test:8443"]',
      source: `file:${toml}`,
    });
    assert.deepEqual(printed(out, 'token-file'), {
      value: '"/etc/muster/join-token"',
      source: `file:${toml}`,
    });
    assert.deepEqual(printed(out, 'token'), { value: '"(redacted)"', source: 'flag' });
    assert.deepEqual(printed(out, 'name'), { value: '"web-9"', source: 'env:MUSTER_NODE_NAME' });
    assert.deepEqual(printed(out, 'rekey'), { value: 'true', source: `file:${toml}` });
    assert.deepEqual(printed(out, 'renew-fraction'), { value: '"0.67"', source: 'default' });
    assert.doesNotMatch(out, /mjt_literal/);
    assert.equal(existsSync(dataDir), false, '--print-config writes nothing');

    for (const [text, problem] of [
      [
        'token = "mjt_secret"\n',
        'token is a secret and is not written in the config file; put it in a file of its own and set token-file to its path',
      ],
      ['servers = ["https://a.test:8443"]\n', 'unknown key "servers" (did you mean server?)'],
      [
        'server = "https://a.test:8443"\n',
        'server must be an array of strings, not a string: server = ["https://a.test:8443"]',
      ],
      ['renew-fraction = true\n', 'renew-fraction must be a string, not a boolean: renew-fraction = "true"'],
      ['listen = "127.0.0.1:8443"\n', 'unknown key "listen"'],
    ] as const) {
      const bad = write('agent.toml', `data-dir = "${dataDir}"\n${text}`);
      const result = await sandbox.run(['agent', '--config', bad]);
      assertRefused(result, 'agent', `${bad}: ${problem}`);
      assert.doesNotMatch(result.stderr, /mjt_secret/);
    }
    // A bad value from the file is judged like one from a flag, and named by its flag.
    const badValue = write('agent.toml', `data-dir = "${dataDir}"\nrenew-fraction = "2"\n`);
    assertRefused(
      await sandbox.run(['agent', '--config', badValue]),
      'agent',
      '--renew-fraction: "2" must be a number strictly between 0 and 1, such as 0.67 (renew after two thirds of the lifetime)',
    );
    assert.equal(existsSync(dataDir), false, 'nothing is written for a refused configuration');
  });
});
