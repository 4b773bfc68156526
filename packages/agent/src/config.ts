import { resolve } from 'node:path';
import {
  CA_PIN_PATTERN,
  ConfigError,
  configSettings,
  defaultOf,
  LEVELS,
  type Level,
  type RawSettings,
  readSettings,
  type SettingSource,
  type SettingSpec,
} from '@muster/host';
import { isNodeName, isProfile, parseLabels } from '@muster/proto';
import { SIGNED_SETTINGS, signedSettings } from './signing-config.js';

/** The agent's configuration: read once at start, validated, frozen. */
export interface AgentConfig {
  /** The first server: where enrollment goes first, and what the identity records. */
  readonly server?: URL;
  /** Every server to try, in order, the first one included; without it just `server`. */
  readonly servers?: readonly URL[];
  readonly token?: string;
  readonly caPin?: string;
  /** SHA-256 of the fleet root key that signs command policies, from the join line. */
  readonly rootPin?: string;
  readonly dataDir: string;
  readonly name?: string;
  readonly profile?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly services: readonly string[];
  readonly logLevel: Level;
  /** Renew when this fraction of the certificate's lifetime has passed; strictly between 0 and 1. */
  readonly renewFraction: number;
  /** Renew onto a fresh key each time, not the key held now. */
  readonly rekey: boolean;
  /** Enroll without a token: queue a request and wait for an operator to approve it. */
  readonly request?: boolean;
  /** Enroll from a grant file (`muster nodes sign --out`) for this host's request. */
  readonly grant?: string;
  /** Sign every request and the channel upgrade (RFC 9421) for a TLS-terminating proxy in front. */
  readonly signedRequests?: boolean;
  /** The PEM of the CA that issued the proxy's certificate (default: the system store). */
  readonly proxyCa?: string;
}

export const DEFAULT_RENEW_FRACTION = 0.67;

export const AGENT_SETTINGS: readonly SettingSpec[] = [
  {
    flag: 'server',
    env: 'MUSTER_SERVER',
    kind: 'list',
    value: 'URL',
    help: 'agent-plane URL of the control plane, https://HOST:8443; repeatable, one per replica or load balancer, tried in order (env: comma-separated)',
  },
  {
    flag: 'token-file',
    env: 'MUSTER_JOIN_TOKEN_FILE',
    kind: 'string',
    value: 'FILE',
    help: 'read the one-time join token from FILE, or from stdin with - (only needed to enroll)',
  },
  {
    // No environment variable: a literal secret does not belong in the environment either, nor
    // in a config file (there it is token-file).
    flag: 'token',
    kind: 'string',
    secret: true,
    value: 'TOKEN',
    help: 'the join token itself; less safe than --token-file, since every local user can read it in ps',
  },
  {
    flag: 'ca-pin',
    env: 'MUSTER_CA_PIN',
    kind: 'string',
    value: 'sha256:HEX',
    help: 'SHA-256 of the fleet CA public key, from the join line',
  },
  {
    flag: 'root-pin',
    env: 'MUSTER_ROOT_PIN',
    kind: 'string',
    value: 'sha256:HEX',
    help: 'SHA-256 of the fleet root key that signs command policies, from the join line; without it this node runs no commands',
  },
  {
    flag: 'data-dir',
    env: 'MUSTER_AGENT_DATA_DIR',
    kind: 'string',
    value: 'DIR',
    default: './.muster-agent',
    help: 'where the key and certificate live',
  },
  {
    flag: 'name',
    env: 'MUSTER_NODE_NAME',
    kind: 'string',
    value: 'NAME',
    help: 'node name to enroll as (default: the host name)',
  },
  {
    flag: 'profile',
    env: 'MUSTER_PROFILE',
    kind: 'string',
    value: 'PROFILE',
    help: 'profile to ask for, when the token leaves it open',
  },
  {
    flag: 'label',
    env: 'MUSTER_LABELS',
    kind: 'list',
    value: 'K=V',
    help: 'label to add at enrollment; repeatable (env: comma-separated)',
  },
  {
    flag: 'service',
    env: 'MUSTER_SERVICES',
    kind: 'list',
    value: 'NAME',
    help: 'service whose state to report; repeatable (env: comma-separated)',
  },
  {
    flag: 'renew-fraction',
    env: 'MUSTER_RENEW_FRACTION',
    kind: 'string',
    value: 'F',
    default: String(DEFAULT_RENEW_FRACTION),
    help: 'renew when this fraction of the certificate lifetime has passed, strictly between 0 and 1',
  },
  {
    flag: 'rekey',
    kind: 'boolean',
    help: 'renew onto a fresh key each time instead of the key held now',
  },
  {
    flag: 'request',
    kind: 'boolean',
    help: 'enroll without a join token: queue a request, print its key fingerprint, and wait for "muster nodes approve" (needs --server and --ca-pin)',
  },
  {
    flag: 'grant',
    kind: 'string',
    value: 'FILE',
    help: 'enroll from a grant file that "muster nodes sign" wrote for this host\'s "muster agent request"',
  },
  {
    flag: 'log-level',
    env: 'MUSTER_LOG_LEVEL',
    kind: 'string',
    value: 'LEVEL',
    default: 'info',
    help: 'error, warn, info or debug',
  },
  ...SIGNED_SETTINGS,
];

export function agentConfigFrom(
  raw: RawSettings,
  tokenFromFile: string | undefined,
  cwd = process.cwd(),
): AgentConfig {
  const problems: string[] = [];
  const str = (flag: string) => raw[flag] as string | undefined;
  const servers: URL[] = [];
  for (const text of (raw.server as string[] | undefined) ?? []) {
    try {
      const url = new URL(text);
      if (url.protocol !== 'https:') problems.push(`--server: "${text}" must be an https:// URL`);
      else if (!servers.some((s) => s.origin === url.origin)) servers.push(url);
    } catch {
      problems.push(`--server: "${text}" is not a URL`);
    }
  }
  const server = servers[0];
  const token = str('token') ?? tokenFromFile;
  if (str('token') !== undefined && tokenFromFile !== undefined)
    problems.push('--token and --token-file exclude each other');
  const caPin = str('ca-pin');
  if (caPin !== undefined && !CA_PIN_PATTERN.test(caPin))
    problems.push('--ca-pin: expected sha256: and 64 hex digits');
  const rootPin = str('root-pin');
  if (rootPin !== undefined && !CA_PIN_PATTERN.test(rootPin))
    problems.push('--root-pin: expected sha256: and 64 hex digits');
  const name = str('name');
  if (name !== undefined && !isNodeName(name)) {
    problems.push(`--name: "${name}" must be 1-63 lowercase letters, digits or dashes`);
  }
  const profile = str('profile');
  if (profile !== undefined && !isProfile(profile))
    problems.push(`--profile: "${profile}" is not a valid profile`);
  let labels: Record<string, string> = {};
  try {
    labels = parseLabels((raw.label as string[] | undefined) ?? []);
  } catch (err) {
    problems.push(`--label: ${(err as Error).message}`);
  }
  const services = (raw.service as string[] | undefined) ?? [];
  for (const service of services) {
    if (!/^[A-Za-z0-9@._:-]{1,256}$/.test(service))
      problems.push(`--service: "${service}" is not a service name`);
  }
  const def = (flag: string) => defaultOf(AGENT_SETTINGS, flag);
  const logLevel = (str('log-level') ?? def('log-level')) as Level;
  if (!LEVELS.includes(logLevel))
    problems.push(`--log-level: "${logLevel}" is not one of ${LEVELS.join(', ')}`);
  const fractionText = str('renew-fraction') ?? def('renew-fraction');
  const renewFraction = Number(fractionText);
  if (!/^\d*\.?\d+$/.test(fractionText.trim()) || !(renewFraction > 0 && renewFraction < 1)) {
    problems.push(
      `--renew-fraction: "${fractionText}" must be a number strictly between 0 and 1, such as 0.67 (renew after two thirds of the lifetime)`,
    );
  }
  const request = raw.request === true;
  const grant = str('grant');
  const signed = signedSettings(raw, cwd, request, problems);
  const joinWays = [
    token && '--token/--token-file',
    request && '--request',
    grant !== undefined && '--grant',
  ].filter(Boolean);
  if (joinWays.length > 1) problems.push(`${joinWays.join(', ')} exclude each other: a host joins one way`);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    ...(server ? { server, servers: Object.freeze(servers) } : {}),
    ...(token ? { token } : {}),
    ...(caPin ? { caPin } : {}),
    ...(rootPin ? { rootPin } : {}),
    dataDir: resolve(cwd, str('data-dir') ?? def('data-dir')),
    ...(name ? { name } : {}),
    ...(profile ? { profile } : {}),
    labels,
    services,
    logLevel,
    renewFraction,
    rekey: raw.rekey === true,
    request,
    ...(grant !== undefined ? { grant: resolve(cwd, grant) } : {}),
    ...signed,
  });
}

/** What `muster agent` reads: `--config` and `--print-config`, then every setting. */
export const AGENT_COMMAND_SETTINGS: readonly SettingSpec[] = [
  ...configSettings('MUSTER_AGENT_CONFIG', 'server = ["https://HOST:8443"]'),
  ...AGENT_SETTINGS,
];

/**
 * The agent's raw settings from a command line, the environment and a config file
 * (`--config` or MUSTER_AGENT_CONFIG), in that order of precedence, with where each came from.
 * Every bad flag, variable, key and value, checked as agentConfigFrom checks them, is among the
 * problems; only the join token is read later, since it may come from stdin.
 */
export function readAgentSettings(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): {
  values: RawSettings;
  sources: Record<string, SettingSource>;
  problems: string[];
  printConfig: boolean;
} {
  const { values, sources, problems, positionals } = readSettings(AGENT_COMMAND_SETTINGS, argv, env, {
    flagsAsProblems: true,
  });
  if (positionals.length > 0) problems.push(`unexpected argument "${positionals[0]}"`);
  try {
    agentConfigFrom(values, undefined);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  return { values, sources, problems, printConfig: values['print-config'] === true };
}
