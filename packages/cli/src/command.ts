import type { RawSettings, SettingSpec } from '@muster/host';

export interface CommandContext {
  values: RawSettings;
  positionals: string[];
  /** The words after the verb, as given; for verbs that read their own settings. */
  argv: readonly string[];
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
  /** More text for `--help`: what it does and an example; loaded lazily where it comes from an optional part. */
  details?: string | (() => Promise<string>);
  /** Its flags; loaded lazily where they belong to an optional part of the install. */
  settings: readonly SettingSpec[] | (() => Promise<readonly SettingSpec[]>);
  /**
   * The verb reads `argv` with its own loader (the server's, which lists every bad flag, variable
   * and value in one error); `values` and `positionals` are then empty.
   */
  readsOwnSettings?: boolean;
  /** Returns the exit code; 0 when nothing is returned. */
  run(ctx: CommandContext): Promise<number | undefined>;
}
