import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { AGENT_COMMAND_SETTINGS, AGENT_SETTINGS, identityPaths, loadIdentity } from '@muster/agent';
import { defaultOf, UsageError } from '@muster/host';
import type { Command } from '../command.js';

// The agent host's checks of `muster doctor`, and what both roles share. This file stays free of server code: the
// agent bundle (`muster-agent doctor`) carries it.

/** One finding: what was seen and, when it is wrong, what to do about it. */
export interface Finding {
  ok: boolean;
  what: string;
  fix?: string;
  /** Nothing after this can be checked until it is fixed (no data dir, say). */
  fatal?: boolean;
}

export const pass = (what: string): Finding => ({ ok: true, what });
export const fail = (what: string, fix: string): Finding => ({ ok: false, what, fix });

export type Check = () => Promise<Finding | Finding[]>;

/**
 * Runs the checks in order, one line each on stdout. A check that throws is a failure with its
 * message. Returns 0 when all pass; otherwise throws naming the first thing to fix (exit 1).
 */
export async function runChecks(checks: readonly Check[], out = process.stdout): Promise<number> {
  const findings: Finding[] = [];
  for (const check of checks) {
    let found: Finding[];
    try {
      found = [await check()].flat();
    } catch (err) {
      found = [fail((err as Error).message, 'deal with that, then run the doctor again')];
    }
    for (const f of found) out.write(f.ok ? `ok    ${f.what}\n` : `FAIL  ${f.what}: ${f.fix}\n`);
    findings.push(...found);
    if (found.some((f) => f.fatal)) break;
  }
  const failed = findings.filter((f) => !f.ok);
  if (failed.length === 0) {
    out.write(`all ${findings.length} checks passed\n`);
    return 0;
  }
  const first = failed[0]!;
  throw new Error(
    `${failed.length} of ${findings.length} checks failed; fix first: ${first.what}: ${first.fix}`,
  );
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/** A directory holding keys: it must exist and be closed to group and others. */
export async function privateDir(dir: string, label: string, missingFix: string): Promise<Finding> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) return { ...fail(`no ${label} at ${dir}`, missingFix), fatal: true };
  if ((info.mode & 0o077) !== 0)
    return fail(`${label} ${dir} is open to others (mode ${octal(info.mode)})`, `run: chmod 700 ${dir}`);
  return pass(`${label} ${dir} is private (${octal(info.mode)})`);
}

/** Secret files that exist must be readable by their owner only; `required` ones must exist. */
export async function privateFiles(
  files: ReadonlyArray<{ path: string; required?: string }>,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const { path, required } of files) {
    const info = await stat(path).catch(() => undefined);
    if (!info) {
      if (required) findings.push(fail(`${path} is missing`, required));
      continue;
    }
    findings.push(
      (info.mode & 0o077) !== 0
        ? fail(`${path} is readable by others (mode ${octal(info.mode)})`, `run: chmod 600 ${path}`)
        : pass(`${path} is private (${octal(info.mode)})`),
    );
  }
  return findings;
}

/** A certificate that must stay valid for at least `minLeftMs` more. */
export async function certificateExpiry(
  label: string,
  path: string,
  minLeftMs: number,
  fix: string,
  now = Date.now(),
): Promise<Finding> {
  const pem = await readFile(path, 'utf8').catch(() => undefined);
  if (pem === undefined) return fail(`${label}: ${path} is missing`, fix);
  const notAfter = Date.parse(new X509Certificate(pem).validTo);
  const left = notAfter - now;
  const at = new Date(notAfter).toISOString();
  if (left <= 0) return fail(`${label} expired at ${at}`, fix);
  if (left < minLeftMs) return fail(`${label} expires at ${at}, in ${span(left)}`, fix);
  return pass(`${label} valid until ${at} (${span(left)} left)`);
}

export function span(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours < 48) return `${Math.max(0, Math.floor(hours))} h`;
  return `${Math.floor(hours / 24)} days`;
}

/** Files in `dir` whose names match, e.g. the `ca-<serial>.key` a CA rotation leaves. */
export async function filesLike(dir: string, pattern: RegExp): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => pattern.test(n)).map((n) => join(dir, n));
}

/** More than this between the host's clock and the server's shows as a failure. */
const CLOCK_TOLERANCE_MS = 30_000;

/**
 * One mTLS request to the agent plane with the node's identity, trusting only the CA it enrolled
 * with: whether the server is there, accepts this node, and what time its Date header says.
 */
function probeServer(
  url: URL,
  identity: { keyPem: string; certPem: string; caPem: string },
): Promise<{ status: number; date: number; sentAt: number; receivedAt: number }> {
  return new Promise((resolveProbe, reject) => {
    const sentAt = Date.now();
    const req = request(
      new URL('/v1/agent/policy', url),
      { key: identity.keyPem, cert: identity.certPem, ca: identity.caPem, agent: false, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolveProbe({
            status: res.statusCode ?? 0,
            date: Date.parse(String(res.headers.date)),
            sentAt,
            receivedAt: Date.now(),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

async function serverChecks(
  url: URL,
  identity: { keyPem: string; certPem: string; caPem: string; name: string },
): Promise<Finding[]> {
  let answer: Awaited<ReturnType<typeof probeServer>>;
  try {
    answer = await probeServer(url, identity);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code?.startsWith('ERR_TLS') || /certificate/i.test(e.message) ? `TLS: ${e.message}` : e.message;
    return [
      fail(
        `server ${url.origin} cannot be reached (${why})`,
        'check that muster server runs there and that the network and firewall let this host reach that port',
      ),
    ];
  }
  if (answer.status === 401 || answer.status === 403)
    return [
      fail(
        `server ${url.origin} refuses this node's identity (${answer.status})`,
        `on the server run "muster token create --name ${identity.name}" and start the agent with that line`,
      ),
    ];
  if (answer.status >= 400)
    return [fail(`server ${url.origin} answers ${answer.status}`, 'look at the server log for why')];
  const findings = [pass(`server ${url.origin} reachable; it accepts this node's identity`)];
  if (!Number.isFinite(answer.date)) return findings;
  // The Date header has whole seconds: allow for that and for the round trip.
  const offset = answer.date + 500 - (answer.sentAt + answer.receivedAt) / 2;
  const slack = CLOCK_TOLERANCE_MS + (answer.receivedAt - answer.sentAt) / 2;
  const secs = Math.round(Math.abs(offset) / 1000);
  findings.push(
    Math.abs(offset) > slack
      ? fail(
          `this host's clock is ${secs} s ${offset > 0 ? 'behind' : 'ahead of'} the server's`,
          'turn on time sync (timedatectl set-ntp true, or chrony)',
        )
      : pass(`clock within ${secs} s of the server's`),
  );
  return findings;
}

/** The checks for an agent host: its data dir, identity, and every server it talks to. */
export function agentChecks(dataDir: string, extraServers: readonly URL[] = []): Check[] {
  const paths = identityPaths(dataDir);
  const enroll = `enroll this host first: run the line "muster token create" prints, with --data-dir ${dataDir}`;
  return [
    () => privateDir(dataDir, 'agent data dir', enroll),
    () => privateFiles([{ path: paths.key, required: enroll }, { path: paths.nextKey }]),
    async () => {
      const identity = await loadIdentity(dataDir);
      if (!identity) return fail(`no identity in ${dataDir}`, enroll);
      const expiry = await certificateExpiry(
        `node certificate of ${identity.name}`,
        paths.cert,
        1,
        `the agent renews it while it runs; now on the server run "muster token create --name ${identity.name}" and start the agent with that line`,
      );
      const urls = [
        ...new Set([identity.server, ...extraServers.map((u) => u.href)].map((u) => new URL(u).origin)),
      ];
      const reached = await Promise.all(urls.map((u) => serverChecks(new URL(u), identity)));
      return [expiry, ...reached.flat()];
    },
  ];
}

/** `--server` (repeatable, as for the agent): more agent-plane URLs to check besides the one the node enrolled with. */
export const DOCTOR_SERVER_SETTING = AGENT_SETTINGS.find((s) => s.flag === 'server')!;

export function agentServerUrls(raw: unknown): URL[] {
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map((text) => {
    let url: URL | undefined;
    try {
      url = new URL(text as string);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') throw new UsageError(`--server: "${text}" is not an https:// URL`);
    return url;
  });
}

/** `muster-agent doctor`: the agent host checks of `muster doctor --agent-data-dir`, with the agent's own flags. */
export const doctorAgentCommand: Command = {
  path: ['doctor'],
  summary: 'check this agent host: data dir, key modes, certificate, clock, every server',
  details:
    'One line per check, ok or FAIL with what to do; exit 1 naming the first thing to fix.\n' +
    'It reads the same --data-dir and --server (and MUSTER_* variables) as muster agent, or its\n' +
    'config file (--config /etc/muster/agent.toml; the keys not checked here are ignored).',
  settings: [
    // The agent's own config file, read as the agent reads it; the keys not checked here are ignored.
    { ...AGENT_COMMAND_SETTINGS.find((s) => s.flag === 'config')!, fileSettings: AGENT_SETTINGS },
    ...AGENT_SETTINGS.filter((s) => s.flag === 'data-dir' || s.flag === 'server'),
  ],
  async run({ values }) {
    const dataDir = resolve(
      (values['data-dir'] as string | undefined) ?? defaultOf(AGENT_SETTINGS, 'data-dir'),
    );
    return runChecks(agentChecks(dataDir, agentServerUrls(values.server)));
  },
};
