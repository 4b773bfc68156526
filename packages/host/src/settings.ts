import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

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
  /** What `--help` says about it, default included. */
  help: string;
  short?: string;
}

export type RawSettings = Record<string, string | boolean | string[] | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type ParseOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/**
 * Reads flags first, then the environment, then `<ENV>_FILE` files. Unknown flags and a flag
 * missing its value are usage errors, thrown, unless `flagsAsProblems` lists them among the
 * problems (a loader that reports everything at once). Values are returned raw; the caller
 * validates them all and reports every bad one at once.
 */
export function readSettings(
  specs: readonly SettingSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  { flagsAsProblems = false } = {},
): { values: RawSettings; positionals: string[]; problems: string[] } {
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
  for (const spec of specs) {
    const flagValue = parsed.values[spec.flag];
    if (flagValue !== undefined) {
      values[spec.flag] = flagValue as string | boolean | string[];
      continue;
    }
    if (!spec.env) continue;
    const fileVar = `${spec.env}_FILE`;
    const filePath = env[fileVar];
    if (spec.secret && env[spec.env] !== undefined && filePath === undefined) {
      problems.push(`${spec.env} must not hold a secret; put it in a file and set ${fileVar} to its path`);
      continue;
    }
    let raw: string | undefined = spec.secret ? undefined : env[spec.env];
    if (filePath !== undefined) {
      try {
        raw = readFileSync(filePath, 'utf8').trim();
      } catch (err) {
        problems.push(
          `${fileVar}: cannot read ${filePath} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
        continue;
      }
    }
    if (raw === undefined || raw === '') continue;
    if (spec.kind === 'boolean') {
      if (raw === 'true' || raw === '1') values[spec.flag] = true;
      else if (raw === 'false' || raw === '0') values[spec.flag] = false;
      else problems.push(`${spec.env}: expected true or false, got "${raw}"`);
    } else if (spec.kind === 'list') {
      values[spec.flag] = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    } else {
      values[spec.flag] = raw;
    }
  }
  return { values, positionals: parsed.positionals, problems };
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
    return [`  ${flag}`, `${spec.help}${env}`] as const;
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
