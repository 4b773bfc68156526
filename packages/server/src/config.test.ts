import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isLoopback, joinUrl, loadServerConfig, parseHostPort, serverConfigFrom } from './config.js';
import { ConfigError } from './errors.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('serverConfigFrom', () => {
  test('defaults follow the contract', () => {
    const config = serverConfigFrom({}, '/srv/muster');
    assert.equal(config.dataDir, '/srv/muster/.muster');
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8443 });
    assert.deepEqual(config.adminListen, { host: '127.0.0.1', port: 8080 });
    assert.equal(config.db, 'sqlite:/srv/muster/.muster/muster.db');
    assert.equal(config.publicUrl, undefined);
    assert.equal(joinUrl(config, 8443), 'https://127.0.0.1:8443');
    // Listening on port 0: join lines carry the port the OS picked, never :0.
    assert.equal(joinUrl(serverConfigFrom({ listen: '127.0.0.1:0' }), 40123), 'https://127.0.0.1:40123');
    assert.equal(config.trustDomain, 'muster.local');
    assert.equal(config.certLifetimeMs, 24 * 3_600_000);
    assert.equal(config.heartbeatIntervalMs, 10_000);
    assert.equal(config.enrollRate, 20);
    assert.equal(config.renewRate, 6);
    assert.equal(config.clockSkewAllowanceMs, 5 * 60_000);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.adminBehindProxy, false);
    assert.deepEqual(config.adminHosts, []);
    assert.equal(config.authFailureRate, 30);
  });

  test('is frozen', () => {
    const config = serverConfigFrom({});
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.sans));
    assert.throws(() => {
      (config as { db: string }).db = 'sqlite:/elsewhere';
    }, TypeError);
  });

  test('lists every malformed key in one error', () => {
    const problems = problemsOf(() =>
      serverConfigFrom({
        listen: 'nowhere',
        'admin-listen': '127.0.0.1:99999',
        db: 'mysql://x',
        san: ['ok.example', 'not a name'],
        'trust-domain': 'Muster.Local',
        'cert-lifetime': '24',
        'heartbeat-interval': '500ms',
        'enroll-rate': '-1',
        'log-level': 'loud',
        'admin-cert': 'cert.pem',
        'public-url': 'http://muster.example',
      }),
    );
    const flags = [
      '--listen',
      '--admin-listen',
      '--db',
      '--san',
      '--trust-domain',
      '--cert-lifetime',
      '--heartbeat-interval',
      '--enroll-rate',
      '--log-level',
      '--admin-cert',
      '--public-url',
    ];
    assert.equal(problems.length, flags.length, problems.join('\n'));
    for (const flag of flags)
      assert.ok(
        problems.some((p) => p.startsWith(flag)),
        `${flag} not reported`,
      );
    assert.ok(problems.some((p) => p.includes('"not a name"')));
  });

  test('a malformed value is refused, never replaced by the default', () => {
    for (const [flag, value] of [
      ['cert-lifetime', '1 day'],
      ['cert-lifetime', '30s'],
      ['heartbeat-interval', '-10s'],
      ['enroll-rate', '0'],
      ['enroll-rate', '1e3'],
      ['renew-rate', '0'],
      ['renew-rate', 'abc'],
      ['clock-skew-allowance', '-5m'],
      ['clock-skew-allowance', 'abc'],
      ['listen', '127.0.0.1'],
      ['db', 'sqlite:'],
      ['public-url', 'not a url'],
      ['auth-failure-rate', '0'],
      ['auth-failure-rate', '2.5'],
      ['auth-failure-rate', 'many'],
    ] as const) {
      assert.equal(problemsOf(() => serverConfigFrom({ [flag]: value })).length, 1, `${flag}=${value}`);
    }
  });

  test('an --admin-host that is not a name or address is refused', () => {
    for (const bad of ['evil example', 'admin.example/path', 'user@admin.example']) {
      assert.equal(problemsOf(() => serverConfigFrom({ 'admin-host': [bad] })).length, 1, bad);
    }
    assert.deepEqual(serverConfigFrom({ 'admin-host': ['admin.example', '10.0.0.9'] }).adminHosts, [
      'admin.example',
      '10.0.0.9',
    ]);
  });

  test('normalizes what it accepts', () => {
    const config = serverConfigFrom(
      {
        db: 'sqlite:data/m.db',
        'public-url': 'https://muster.example:8443/some/path',
        'cert-lifetime': '1.5h',
        listen: '[::1]:9443',
      },
      '/srv',
    );
    assert.equal(config.db, 'sqlite:/srv/data/m.db');
    assert.equal(config.publicUrl, 'https://muster.example:8443');
    assert.equal(config.certLifetimeMs, 5_400_000);
    assert.deepEqual(config.listen, { host: '::1', port: 9443 });
  });
});

describe('parseHostPort and isLoopback', () => {
  test('read HOST:PORT and bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('0.0.0.0:8443'), { host: '0.0.0.0', port: 8443 });
    assert.deepEqual(parseHostPort('[::]:80'), { host: '::', port: 80 });
    for (const bad of ['8443', 'host:', 'host:65536', '::1:80', 'a:b:1', '[zz]:1']) {
      assert.equal(parseHostPort(bad), undefined, bad);
    }
  });

  test('know loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.ok(isLoopback(host), host);
    for (const host of ['0.0.0.0', '10.0.0.1', '::', 'localhost.example', '128.0.0.1']) {
      assert.ok(!isLoopback(host), host);
    }
  });
});

describe('loadServerConfig', () => {
  test('flags win over the environment', () => {
    const config = loadServerConfig(['--listen', '127.0.0.1:9000'], { MUSTER_LISTEN: '127.0.0.1:9001' });
    assert.equal(config.listen.port, 9000);
  });

  test('a secret in a literal variable is refused, and reported once', () => {
    const problems = problemsOf(() => loadServerConfig([], { MUSTER_DB: 'postgres://u:secret@db/muster' }));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /MUSTER_DB_FILE/);
    assert.ok(!problems[0]!.includes('secret@db'), 'the secret is not echoed');
  });

  test('problems from the environment and from values are listed together, each once', () => {
    const problems = problemsOf(() =>
      loadServerConfig(['--cert-lifetime', '5'], {
        MUSTER_DB: 'postgres://x',
        MUSTER_ADMIN_BEHIND_PROXY: 'yes',
      }),
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.equal(new Set(problems).size, 3);
  });

  test('reads secrets from *_FILE, and says when the file cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muster-config-'));
    try {
      const file = join(dir, 'db-url');
      await writeFile(file, 'postgres://muster@db.example/muster\n');
      assert.equal(loadServerConfig([], { MUSTER_DB_FILE: file }).db, 'postgres://muster@db.example/muster');
      const problems = problemsOf(() => loadServerConfig([], { MUSTER_DB_FILE: join(dir, 'missing') }));
      assert.deepEqual(problems, [`MUSTER_DB_FILE: cannot read ${join(dir, 'missing')} (ENOENT)`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unexpected argument is a problem too', () => {
    assert.deepEqual(
      problemsOf(() => loadServerConfig(['serve'], {})),
      ['unexpected argument "serve"'],
    );
  });
});
