import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readConfigFile } from './config-file.js';

/**
 * One description per setting drives the flag parser, the environment, `*_FILE` secrets,
 * validation and `--help`, so the four cannot disagree.
 */
export interface SettingSpec {
  /** The long flag without dashes, e.g. `data-dir`. */
  flag: string;
  /** The environment variable, e.g. `MUSTER_DATA_DIR`. Secrets are read only from `<env>_FILE`. */
  env?: string;
  kind: 'string' | 'boolean' | 'list';
  /** Secret values are never taken literally from the environment, only from `<env>_FILE`. */
  secret?: boolean;
  /** A placeholder for `--help`, e.g. `DIR`. */
  value?: string;
  /** What `--help` says about it; `(default …)` is added from `default` unless it says so itself. */
  help: string;
  short?: string;
  /**
   * The value in force when it is given nowhere, as it would be written on the command line: the
   * one place the default lives (the validation reads it, `--help` and `--print-config` show it).
   * Unset where the default is derived from other settings or the host.
   */
  default?: string;
  /**
   * On a `config` setting: the settings its file is read against, when they are more than the
   * verb's own (`muster doctor` reads the server's file): a key of those is accepted, and taken
   * only when the verb has that setting; an unknown key is still an error.
   */
  fileSettings?: readonly SettingSpec[];
}

export type RawSettings = Record<string, string | boolean | string[] | undefined>;

/** Where a setting's value came from: `flag`, `env:VAR`, `file:PATH` (a config file) or `default`. */
export type SettingSource = 'flag' | 'default' | `env:${string}` | `file:${string}`;

/** The default a setting's spec gives; a setting without one is a mistake in the code. */
export function defaultOf(specs: readonly SettingSpec[], flag: string): string {
  const value = specs.find((s) => s.flag === flag)?.default;
  if (value === undefined) throw new Error(`setting --${flag} has no default in its spec`);
  return value;
}

/** The help text of a setting as `--help` and README show it, its default included. */
export function settingHelp(spec: SettingSpec): string {
  return spec.default === undefined || spec.help.includes('(default')
    ? spec.help
    : `${spec.help} (default ${spec.default})`;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type ParseOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/**
 * Reads flags first, then the environment (with `<ENV>_FILE` files), then a config file, when
 * the specs hold a `config` setting (see configSettings) and it is given. Unknown flags and a
 * flag missing its value are usage errors, thrown, unless `flagsAsProblems` lists them among the
 * problems (a loader that reports everything at once). Values are returned raw, with where each
 * came from; the caller validates them all and reports every bad one at once. Defaults are the
 * caller's too (see defaultOf).
 */
export function readSettings(
  specs: readonly SettingSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  { flagsAsProblems = false } = {},
): {
  values: RawSettings;
  positionals: string[];
  problems: string[];
  sources: Record<string, SettingSource>;
} {
  const options: ParseOptions = {};
  for (const spec of specs) {
    options[spec.flag] = {
      type: spec.kind === 'boolean' ? 'boolean' : 'string',
      ...(spec.kind === 'list' ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  let args = withDashValues(specs, argv);
  const problems: string[] = [];
  if (flagsAsProblems) {
    const checked = flagProblems(options, args);
    args = checked.kept;
    problems.push(...checked.problems);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(cleanParseError((err as Error).message));
  }
  const values: RawSettings = {};
  const sources: Record<string, SettingSource> = {};
  const set = (flag: string, value: string | boolean | string[], source: SettingSource) => {
    values[flag] = value;
    sources[flag] = source;
  };
  for (const spec of specs) {
    const flagValue = parsed.values[spec.flag];
    if (flagValue !== undefined) set(spec.flag, flagValue as string | boolean | string[], 'flag');
    else if (spec.env) {
      const fromEnv = envValue(spec, spec.env, env, problems);
      if (fromEnv) set(spec.flag, fromEnv.value, fromEnv.source);
    }
  }
  const configPath = values.config as string | undefined;
  const configSpec = specs.find((s) => s.flag === 'config');
  if (configPath !== undefined && configSpec) {
    const file = readConfigFile(configPath, configSpec.fileSettings ?? specs);
    problems.push(...file.problems);
    const own = new Set(specs.map((s) => s.flag));
    for (const [flag, value] of Object.entries(file.values)) {
      if (own.has(flag) && values[flag] === undefined && value !== undefined)
        set(flag, value, `file:${configPath}`);
    }
  }
  return { values, positionals: parsed.positionals, problems, sources };
}

/** A setting from its variable, or a secret from `<VAR>_FILE`; undefined when unset or bad. */
function envValue(
  spec: SettingSpec,
  name: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): { value: string | boolean | string[]; source: SettingSource } | undefined {
  const fileVar = `${name}_FILE`;
  const filePath = env[fileVar];
  if (spec.secret && env[name] !== undefined && filePath === undefined) {
    problems.push(`${name} must not hold a secret; put it in a file and set ${fileVar} to its path`);
    return undefined;
  }
  let raw: string | undefined = spec.secret ? undefined : env[name];
  if (filePath !== undefined) {
    try {
      raw = readFileSync(filePath, 'utf8').trim();
    } catch (err) {
      problems.push(
        `${fileVar}: cannot read ${filePath} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      return undefined;
    }
  }
  if (raw === undefined || raw === '') return undefined;
  const source: SettingSource = `env:${filePath !== undefined ? fileVar : name}`;
  if (spec.kind === 'boolean') {
    if (raw === 'true' || raw === '1') return { value: true, source };
    if (raw === 'false' || raw === '0') return { value: false, source };
    problems.push(`${name}: expected true or false, got "${raw}"`);
    return undefined;
  }
  if (spec.kind === 'list') {
    const list = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    return { value: list, source };
  }
  return { value: raw, source };
}

/** Unknown flags and flags used wrongly, each as a problem, and the words left once they are dropped. */
function flagProblems(options: ParseOptions, args: string[]): { kept: string[]; problems: string[] } {
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const dropped = new Set<number>();
  const problems: string[] = [];
  for (const [i, token] of tokens.entries()) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    const next = tokens[i + 1];
    if (!option) {
      problems.push(`unknown flag ${token.rawName}`);
      // The word after it is most likely its value (`--lissen 0.0.0.0:8443`), not an argument.
      if (token.inlineValue === undefined && next?.kind === 'positional' && next.index === token.index + 1)
        dropped.add(next.index);
    } else if (option.type === 'string' && token.value === undefined)
      problems.push(`${token.rawName} needs a value`);
    else if (option.type === 'boolean' && token.inlineValue) problems.push(`${token.rawName} takes no value`);
    else continue;
    dropped.add(token.index);
  }
  return { kept: args.filter((_, i) => !dropped.has(i)), problems };
}

/**
 * `--cert-lifetime -1` means the value -1, to be refused as a value with every other bad one,
 * not "ambiguous": a dash-leading word after a flag that takes a value is that value, unless it
 * is itself one of the flags (then the value is missing, and parseArgs says so).
 */
function withDashValues(specs: readonly SettingSpec[], argv: readonly string[]): string[] {
  const takesValue = new Set(specs.filter((s) => s.kind !== 'boolean').map((s) => `--${s.flag}`));
  const known = new Set(specs.flatMap((s) => [`--${s.flag}`, ...(s.short ? [`-${s.short}`] : [])]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (takesValue.has(arg) && next?.startsWith('-') && next !== '--' && !known.has(next.split('=')[0]!)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function cleanParseError(message: string): string {
  // parseArgs explains how to pass a dash-leading value; keep the first sentence only.
  return message.split('. ')[0]!.replace(/\.$/, '');
}

/** Renders the options part of `--help`. */
export function formatSettingsHelp(specs: readonly SettingSpec[]): string {
  const rows = specs.map((spec) => {
    const flag = `--${spec.flag}${spec.kind === 'boolean' ? '' : ` ${spec.value ?? 'VALUE'}`}`;
    const env = spec.env ? ` [${spec.secret ? `${spec.env}_FILE` : spec.env}]` : '';
    return [`  ${flag}`, `${settingHelp(spec)}${env}`] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([flag]) => flag.length)) + 2);
  return rows
    .map(([flag, help]) =>
      flag.length + 2 > width ? `${flag}\n${' '.repeat(width)}${help}` : `${flag.padEnd(width)}${help}`,
    )
    .join('\n');
}

/** A configuration problem found at start; lists every bad key at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? `invalid configuration: ${problems[0]}`
        : `invalid configuration:\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'ConfigError';
  }
}
