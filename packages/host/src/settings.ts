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

/**
 * Reads flags first, then the environment, then `<ENV>_FILE` files. Unknown flags and a flag
 * missing its value are usage errors. Values are returned raw; the caller validates them all
 * and reports every bad one at once.
 */
export function readSettings(
  specs: readonly SettingSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { values: RawSettings; positionals: string[]; problems: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const spec of specs) {
    options[spec.flag] = {
      type: spec.kind === 'boolean' ? 'boolean' : 'string',
      ...(spec.kind === 'list' ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: withDashValues(specs, argv), options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(cleanParseError((err as Error).message));
  }
  const values: RawSettings = {};
  const problems: string[] = [];
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
