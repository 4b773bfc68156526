import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { defaultOf, type RawSettings } from '@muster/host';
import { parseDuration } from '@muster/proto';
import { ConfigError } from './errors.js';
import { LOG_LEVELS, type LogLevel, SERVER_SETTINGS } from './settings.js';

// The loader lives in config-load.ts; it is named here too, where it always was.
export { loadServerConfig, loadServerSettings } from './config-load.js';
export { LOG_LEVELS, type LogLevel, SERVER_SETTINGS };

import { readSsoSettings, type SsoSettings } from './features/console/sso-config.js';
import { installSettings } from './features/install/config.js';
import { type RequestQueueSettings, requestQueueSettings } from './features/requests/settings.js';
import { type ProxiedSettings, proxiedSettings } from './features/signed/config.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds.js';

/** The server's configuration: read once at start, validated, frozen, passed in. */
export interface ServerConfig extends ProxiedSettings {
  readonly dataDir: string;
  readonly listen: HostPort;
  readonly adminListen: HostPort;
  readonly db: string;
  readonly sans: readonly string[];
  /** The agent-plane URL join lines carry, when the operator set one; otherwise see joinUrl(). */
  readonly publicUrl?: string;
  readonly trustDomain: string;
  readonly certLifetimeMs: number;
  /** Lifetime of a user's personal certificate from `muster login`. */
  readonly userCertLifetimeMs: number;
  readonly heartbeatIntervalMs: number;
  /** Disk, memory and load limits by profile; `default` for profiles not named. */
  readonly thresholds: Readonly<Record<string, Thresholds>>;
  /** How long a new node status must hold before it is announced as an event. */
  readonly statusDebounceMs: number;
  /** How long telemetry is kept: raw points, per-minute and per-hour rollups. */
  readonly telemetryRetentionMs: { readonly raw: number; readonly minute: number; readonly hour: number };
  /** The most heartbeats per second the whole fleet may send; intervals stretch to stay under it. */
  readonly maxHeartbeatRate: number;
  /** How often a ledger checkpoint is signed when new entries exist. */
  readonly checkpointIntervalMs: number;
  /** Events older than this are removed; a stream asking for them is told of the gap. */
  readonly eventRetentionMs: number;
  /** Enrollments per second allowed from one source address (bursts of five times that). */
  readonly enrollRate: number;
  /** Renewals per minute one node may make, in bursts of as many. */
  readonly renewRate: number;
  /** How far a node's clock may be off before it shows a `clock skew` reason. */
  readonly clockSkewAllowanceMs: number;
  /** The fleet root public key or a file holding it; unset: the data dir's root.pub. */
  readonly fleetRoot?: string;
  readonly logLevel: LogLevel;
  readonly adminTokenFile?: string;
  readonly adminCert?: string;
  readonly adminKey?: string;
  /** Serve the admin plane over plain HTTP on a non-loopback address (behind a trusted TLS proxy). */
  readonly adminBehindProxy: boolean;
  /** More names the admin plane answers to (`Host`), as a proxy in front of it forwards them. */
  readonly adminHosts: readonly string[];
  /** Refused admin credentials per minute one source address may send (in bursts of as many) before 429. */
  readonly authFailureRate: number;
  /** A listener of its own for `/metrics`, without a credential. */
  readonly metricsListen?: HostPort;
  /** Heartbeats a node may send ahead of the interval it was told, before it is throttled. */
  readonly heartbeatBurst: number;
  /** Connection budgets of each plane, and how long a TLS handshake may take. */
  readonly connections: ConnectionLimits;
  /** The queue of enrollment requests (`muster agent --request`). */
  readonly requests: RequestQueueSettings;
  /** Console single sign-on through an OpenID provider (`--oidc-*`), when configured. */
  readonly sso?: SsoSettings;
  /** The agent package served at /v1/install (`--package-dir`); unset: `<repo>/dist-package`. */
  readonly packageDir?: string;
}

/** How many connections each plane holds; unset totals are derived from the open-file limit. */
export interface ConnectionLimits {
  readonly handshakeTimeoutMs: number;
  readonly agent: { readonly total?: number; readonly perSource: number };
  readonly admin: { readonly total: number; readonly perSource: number };
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?$/;

export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  return { host: match[1] ?? match[2] ?? '', port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Validates raw settings into a frozen config. Every bad value is collected and reported in
 * one ConfigError; nothing is silently replaced by a default.
 */
export function serverConfigFrom(raw: RawSettings, cwd = process.cwd()): ServerConfig {
  const problems: string[] = [];
  const str = (flag: string) => raw[flag] as string | undefined;
  const def = (flag: string) => defaultOf(SERVER_SETTINGS, flag);
  const hostPort = (flag: string, fallback = def(flag)): HostPort => {
    const text = str(flag) ?? fallback;
    const parsed = parseHostPort(text);
    if (!parsed) problems.push(`--${flag}: "${text}" is not HOST:PORT`);
    return parsed ?? { host: '127.0.0.1', port: 0 };
  };
  const duration = (flag: string, minMs: number): number => {
    const text = str(flag) ?? def(flag);
    const ms = parseDuration(text);
    if (ms === undefined) problems.push(`--${flag}: "${text}" is not a duration such as 30s, 10m or 24h`);
    else if (ms < minMs) problems.push(`--${flag}: ${text} is shorter than the minimum of ${minMs / 1000}s`);
    return ms ?? minMs;
  };

  const dataDir = resolve(cwd, str('data-dir') ?? def('data-dir'));
  const listen = hostPort('listen');
  const adminListen = hostPort('admin-listen');
  const dbRaw = str('db');
  let db = `sqlite:${dataDir}/muster.db`;
  if (dbRaw !== undefined) {
    if (/^postgres(ql)?:\/\//.test(dbRaw)) db = dbRaw;
    else if (dbRaw.startsWith('sqlite:') && dbRaw.length > 'sqlite:'.length) {
      const path = dbRaw.slice('sqlite:'.length);
      db = `sqlite:${isAbsolute(path) ? path : resolve(cwd, path)}`;
    } else problems.push('--db: expected sqlite:PATH or postgres://USER@HOST/DB');
  }
  const sans = (raw.san as string[] | undefined) ?? [];
  for (const san of sans) {
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(san))
      problems.push(`--san: "${san}" is not a DNS name or IP address`);
  }
  const trustDomain = str('trust-domain') ?? def('trust-domain');
  if (!TRUST_DOMAIN_RE.test(trustDomain))
    problems.push(`--trust-domain: "${trustDomain}" is not a lowercase DNS name`);
  const certLifetimeMs = duration('cert-lifetime', 60_000);
  const userCertLifetimeMs = duration('user-cert-lifetime', 60_000);
  const heartbeatIntervalMs = duration('heartbeat-interval', 1000);
  const checkpointIntervalMs = duration('checkpoint-interval', 100);
  const eventRetentionMs = duration('event-retention', 60_000);
  const statusDebounceMs = duration('status-debounce', 1000);
  const thresholds = readThresholds(str('thresholds'), cwd, problems);
  const telemetryRetentionMs = {
    raw: duration('telemetry-raw-retention', 60_000),
    minute: duration('telemetry-minute-retention', 3_600_000),
    hour: duration('telemetry-hour-retention', 86_400_000),
  };
  const maxRateText = str('max-heartbeat-rate') ?? def('max-heartbeat-rate');
  const maxHeartbeatRate = Number(maxRateText);
  if (!/^\d+$/.test(maxRateText) || !(maxHeartbeatRate > 0)) {
    problems.push(`--max-heartbeat-rate: "${maxRateText}" is not a positive whole number`);
  }
  const enrollRateText = str('enroll-rate') ?? def('enroll-rate');
  const enrollRate = Number(enrollRateText);
  if (!/^\d+(\.\d+)?$/.test(enrollRateText) || !(enrollRate > 0)) {
    problems.push(`--enroll-rate: "${enrollRateText}" is not a positive number`);
  }
  const renewRateText = str('renew-rate') ?? def('renew-rate');
  const renewRate = Number(renewRateText);
  if (!/^\d+(\.\d+)?$/.test(renewRateText) || !(renewRate > 0)) {
    problems.push(`--renew-rate: "${renewRateText}" is not a positive number`);
  }
  const clockSkewAllowanceMs = duration('clock-skew-allowance', 1000);
  const adminHosts = (raw['admin-host'] as string[] | undefined) ?? [];
  for (const name of adminHosts) {
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(name))
      problems.push(`--admin-host: "${name}" is not a DNS name or IP address`);
  }
  const authFailureRateText = str('auth-failure-rate') ?? def('auth-failure-rate');
  const authFailureRate = Number(authFailureRateText);
  if (!/^\d+$/.test(authFailureRateText) || !(authFailureRate > 0)) {
    problems.push(`--auth-failure-rate: "${authFailureRateText}" is not a positive whole number`);
  }
  const logLevel = (str('log-level') ?? def('log-level')) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  const adminCert = str('admin-cert');
  const adminKey = str('admin-key');
  if ((adminCert === undefined) !== (adminKey === undefined))
    problems.push('--admin-cert and --admin-key go together');

  let publicUrl = str('public-url');
  if (publicUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(publicUrl);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') problems.push(`--public-url: "${publicUrl}" is not an https:// URL`);
    else publicUrl = url.origin;
  }
  const denial = denialOfServiceSettings(raw, { hostPort, duration, problems });
  const requests = requestQueueSettings(str, def, duration, problems);
  const sso = readSsoSettings(raw, cwd, problems, {
    listenHost: adminListen.host,
    behindProxy: raw['admin-behind-proxy'] === true,
  });
  const install = installSettings(raw, cwd, problems);
  const proxied = proxiedSettings(raw, parseHostPort, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    dataDir,
    listen,
    adminListen,
    db,
    sans: Object.freeze([...sans]),
    ...(publicUrl ? { publicUrl } : {}),
    trustDomain,
    certLifetimeMs,
    userCertLifetimeMs,
    heartbeatIntervalMs,
    checkpointIntervalMs,
    eventRetentionMs,
    maxHeartbeatRate,
    telemetryRetentionMs,
    statusDebounceMs,
    thresholds,
    enrollRate,
    renewRate,
    clockSkewAllowanceMs,
    ...(str('fleet-root')
      ? {
          fleetRoot: str('fleet-root')!.startsWith('ed25519:')
            ? str('fleet-root')!
            : resolve(cwd, str('fleet-root')!),
        }
      : {}),
    logLevel,
    ...(str('admin-token-file') ? { adminTokenFile: resolve(cwd, str('admin-token-file')!) } : {}),
    ...(adminCert ? { adminCert: resolve(cwd, adminCert) } : {}),
    ...(adminKey ? { adminKey: resolve(cwd, adminKey) } : {}),
    adminBehindProxy: raw['admin-behind-proxy'] === true,
    adminHosts: Object.freeze([...adminHosts]),
    authFailureRate,
    ...denial,
    requests,
    ...(sso ? { sso } : {}),
    ...install,
    ...proxied,
  });
}

/** The settings that bound what one client can cost: see SERVER_SETTINGS' block of them. */
function denialOfServiceSettings(
  raw: RawSettings,
  parse: {
    hostPort(flag: string, fallback?: string): HostPort;
    duration(flag: string, minMs: number): number;
    problems: string[];
  },
): Pick<ServerConfig, 'metricsListen' | 'heartbeatBurst' | 'connections'> {
  // A setting whose spec has a default always has a value; max-connections has none of its own.
  const whole = (flag: string): number | undefined => {
    const fallback = SERVER_SETTINGS.find((s) => s.flag === flag)?.default;
    const text = (raw[flag] as string | undefined) ?? fallback;
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || !(Number(text) > 0)) {
      parse.problems.push(`--${flag}: "${text}" is not a positive whole number`);
      return fallback === undefined ? undefined : Number(fallback);
    }
    return Number(text);
  };
  const total = whole('max-connections');
  return {
    ...(raw['metrics-listen'] !== undefined ? { metricsListen: parse.hostPort('metrics-listen', '') } : {}),
    heartbeatBurst: whole('heartbeat-burst')!,
    connections: Object.freeze({
      handshakeTimeoutMs: parse.duration('tls-handshake-timeout', 100),
      agent: Object.freeze({
        ...(total !== undefined ? { total } : {}),
        perSource: whole('max-connections-per-source')!,
      }),
      admin: Object.freeze({
        total: whole('admin-max-connections')!,
        perSource: whole('admin-max-connections-per-source')!,
      }),
    }),
  };
}

/** The agent-plane URL for join lines: the configured one, or the listen address as bound. */
export function joinUrl(config: Pick<ServerConfig, 'publicUrl' | 'listen'>, boundPort: number): string {
  return config.publicUrl ?? defaultPublicUrl({ host: config.listen.host, port: boundPort });
}

function defaultPublicUrl(listen: HostPort): string {
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '';
  const host = wildcard ? hostnameForUrl() : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `https://${host}:${listen.port}`;
}

function hostnameForUrl(): string {
  return hostname().toLowerCase() || 'localhost';
}

/**
 * Reads `--thresholds FILE`: `{ "<profile>" | "default": { diskAttentionPct, … } }`, each limit
 * optional (the defaults fill in), every bad key or value reported.
 */
function readThresholds(
  file: string | undefined,
  cwd: string,
  problems: string[],
): Record<string, Thresholds> {
  const out: Record<string, Thresholds> = { default: { ...DEFAULT_THRESHOLDS } };
  if (file === undefined) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(resolve(cwd, file), 'utf8'));
  } catch (err) {
    problems.push(
      `--thresholds: cannot read ${file} as JSON (${(err as NodeJS.ErrnoException).code ?? 'malformed'})`,
    );
    return out;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('--thresholds: expected an object of profiles');
    return out;
  }
  const base = { ...DEFAULT_THRESHOLDS, ...((parsed as Record<string, object>).default ?? {}) };
  for (const [profile, limits] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof limits !== 'object' || limits === null) {
      problems.push(`--thresholds: ${profile} is not an object`);
      continue;
    }
    const merged = { ...base, ...(limits as object) } as Record<string, unknown>;
    for (const key of Object.keys(limits)) {
      if (!(key in DEFAULT_THRESHOLDS)) problems.push(`--thresholds: ${profile}.${key} is not a known limit`);
    }
    for (const [key, value] of Object.entries(merged)) {
      const max = key.endsWith('Pct') ? 100 : 1000;
      if (typeof value !== 'number' || !(value > 0 && value <= max)) {
        problems.push(`--thresholds: ${profile}.${key} must be a number above 0 and at most ${max}`);
      }
    }
    const t = merged as unknown as Thresholds;
    if (
      t.diskAttentionPct >= t.diskCriticalPct ||
      t.memoryAttentionPct >= t.memoryCriticalPct ||
      t.loadAttentionPerCpu >= t.loadCriticalPerCpu
    ) {
      problems.push(`--thresholds: ${profile}: each attention limit must be below its critical limit`);
    }
    out[profile] = t;
  }
  out.default = out.default ?? base;
  return out;
}
