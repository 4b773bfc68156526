import type { RawSettings, SettingSpec } from '@muster/host';

export interface CommandContext {
  values: RawSettings;
  positionals: string[];
  env: NodeJS.ProcessEnv;
  /** Aborts on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

/** One verb of the `muster` program. */
export interface Command {
  /** The words that select it, e.g. `['token', 'create']`. */
  path: readonly string[];
  /** The positional arguments, for usage lines, e.g. `NODE`. */
  args?: string;
  summary: string;
  /** More text for `--help`: what it does and an example. */
  details?: string;
  /** Its flags; loaded lazily where they belong to an optional part of the install. */
  settings: readonly SettingSpec[] | (() => Promise<readonly SettingSpec[]>);
  /** Returns the exit code; 0 when nothing is returned. */
  run(ctx: CommandContext): Promise<number | undefined>;
}
