import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import type { RawSettings, SettingSpec } from './settings.js';

/** The settings that say where the others come from; never keys of the file itself. */
export const META_FLAGS: ReadonlySet<string> = new Set(['config', 'print-config']);

/**
 * `--config FILE` and `--print-config` of a role: `env` names the variable that may hold the
 * file's path instead (each role its own, so a host running both reads neither's by mistake).
 */
export function configSettings(env: string, example: string): SettingSpec[] {
  return [
    {
      flag: 'config',
      env,
      kind: 'string',
      value: 'FILE',
      help: `read settings from this TOML file, keys named as the flags (${example}); flags and environment win over it`,
    },
    {
      flag: 'print-config',
      kind: 'boolean',
      help: 'print the settings in force and where each came from (flag, env, file, default), secrets redacted, then exit',
    },
  ];
}

/** What a config file key holds: the setting it sets, and whether it names a file with a secret. */
interface FileKey {
  spec: SettingSpec;
  secretFile: boolean;
}

/** The keys a config file may hold: each setting's flag, and `<flag>-file` in place of a secret. */
function fileKeys(specs: readonly SettingSpec[]): Map<string, FileKey> {
  const keys = new Map<string, FileKey>();
  for (const spec of specs) {
    if (META_FLAGS.has(spec.flag)) continue;
    if (spec.secret) {
      // A secret with a `-file` setting of its own (the agent's token) is read through that one.
      if (!specs.some((s) => s.flag === `${spec.flag}-file`))
        keys.set(`${spec.flag}-file`, { spec, secretFile: true });
    } else keys.set(spec.flag, { spec, secretFile: false });
  }
  return keys;
}

/**
 * Reads a TOML config file into raw settings, as flags would give them. Every problem (bad
 * TOML, an unknown key, a value of the wrong type, a secret written inline, a secret file that
 * cannot be read) is one line naming the file and the key; the good keys are still returned.
 */
export function readConfigFile(
  path: string,
  specs: readonly SettingSpec[],
): { values: RawSettings; problems: string[] } {
  const values: RawSettings = {};
  const problems: string[] = [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { values, problems: [`${path}: cannot read the config file (${errorCode(err)})`] };
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: WHAT\n\n<the lines around it>".
    const what = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    return { values, problems: [`${path}:${err.line}:${err.column}: not valid TOML: ${what}`] };
  }
  const keys = fileKeys(specs);
  for (const [key, value] of Object.entries(doc)) {
    const known = keys.get(key);
    if (!known) {
      problems.push(`${path}: ${unknownKey(key, specs, keys)}`);
      continue;
    }
    const { spec, secretFile } = known;
    const problem = typeProblem(key, spec, secretFile, value);
    if (problem) {
      problems.push(`${path}: ${problem}`);
      continue;
    }
    if (!secretFile) {
      // A number stands for its text (`heartbeat-burst = 5`); the setting's validation judges it.
      values[spec.flag] = isNumber(value) ? String(value) : (value as string | boolean | string[]);
      continue;
    }
    try {
      const secret = readFileSync(value as string, 'utf8').trim();
      if (secret !== '') values[spec.flag] = secret;
    } catch (err) {
      problems.push(`${path}: ${key}: cannot read ${value as string} (${errorCode(err)})`);
    }
  }
  return { values, problems };
}

/** Why a key is not one, and what was probably meant. */
function unknownKey(key: string, specs: readonly SettingSpec[], keys: Map<string, FileKey>): string {
  const secret = specs.find((s) => s.secret && s.flag === key);
  if (secret) {
    const fileKey = keys.has(`${key}-file`)
      ? `${key}-file`
      : specs.find((s) => s.flag === `${key}-file`)?.flag;
    return `${key} is a secret and is not written in the config file; put it in a file of its own and set ${fileKey} to its path`;
  }
  if (META_FLAGS.has(key)) return `${key} is not read from a config file`;
  // MUSTER_ADMIN_LISTEN, admin_listen or Admin-Listen for admin-listen.
  const byEnv = specs.find((s) => s.env === key && !META_FLAGS.has(s.flag));
  const near = byEnv?.flag ?? key.toLowerCase().replaceAll('_', '-');
  const meant = keys.has(near) ? near : [...keys.keys()].find((k) => editDistance(k, near) <= 2);
  return `unknown key "${key}"${meant ? ` (did you mean ${meant}?)` : ''}`;
}

/** Levenshtein distance, for "did you mean" on a mistyped key. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function typeProblem(
  key: string,
  spec: SettingSpec,
  secretFile: boolean,
  value: unknown,
): string | undefined {
  const kind = secretFile ? 'string' : spec.kind;
  const got = describeType(value);
  if (kind === 'string' && typeof value !== 'string' && !(isNumber(value) && !secretFile))
    return `${key} must be a string, not ${got}: ${key} = "${exampleText(value)}"`;
  if (kind === 'boolean' && typeof value !== 'boolean')
    return `${key} must be true or false, not ${got}: ${key} = true`;
  if (kind === 'list' && !(Array.isArray(value) && value.every((v) => typeof v === 'string')))
    return `${key} must be an array of strings, not ${got}: ${key} = ["${Array.isArray(value) ? 'A", "B' : exampleText(value)}"]`;
  return undefined;
}

const isNumber = (value: unknown): value is number | bigint =>
  (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint';

function describeType(value: unknown): string {
  if (Array.isArray(value))
    return value.every((v) => typeof v === 'string') ? 'an array' : 'an array holding other than strings';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number' || typeof value === 'bigint') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  if (value instanceof Date) return 'a date';
  return 'a table';
}

/** The value as the text it should have been written as, when that is short and plain. */
function exampleText(value: unknown): string {
  const text = typeof value === 'object' ? '…' : String(value);
  return text.length > 40 || /["\\\n]/.test(text) ? '…' : text;
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/**
 * What `--print-config` prints: one line per setting in config-file form, with where its value
 * came from (`flag`, `env:VAR`, `file:PATH` or `default`). A secret's value is never printed;
 * a setting with neither a value nor a default of its own is a comment saying so.
 */
export function formatSettingsInForce(
  specs: readonly SettingSpec[],
  values: RawSettings,
  sources: Readonly<Record<string, string>>,
): string {
  const rows: Array<[string, string]> = [];
  for (const spec of specs) {
    if (META_FLAGS.has(spec.flag)) continue;
    // A switch is off and a list empty unless given.
    const implied = spec.kind === 'boolean' ? false : spec.kind === 'list' ? [] : undefined;
    const value = values[spec.flag] ?? spec.default ?? implied;
    if (value === undefined) {
      // What the help says happens then (a default derived from other settings), if it says.
      const derived = /\(default:? [^)]*\)/.exec(spec.help)?.[0];
      rows.push([`# ${spec.flag} is not set${derived ? ` ${derived}` : ''}`, '']);
      continue;
    }
    const source = sources[spec.flag] ?? 'default';
    const shown = spec.secret && source !== 'default' ? '"(redacted)"' : tomlValue(value, spec);
    rows.push([`${spec.flag} = ${shown}`, `# ${source}`]);
  }
  const width = Math.min(56, Math.max(...rows.map(([left, right]) => (right ? left.length : 0))) + 2);
  const config = sources.config ?? (values.config === undefined ? undefined : 'default');
  const head =
    values.config === undefined
      ? '# no config file'
      : `# config file ${values.config as string} (${config === 'flag' ? '--config' : config})`;
  return [
    head,
    ...rows.map(([left, right]) =>
      right ? `${left}${' '.repeat(Math.max(2, width - left.length))}${right}` : left,
    ),
    '',
  ].join('\n');
}

function tomlValue(value: string | boolean | string[], spec: SettingSpec): string {
  if (spec.kind === 'boolean') return String(value === true);
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
  return JSON.stringify(value);
}
