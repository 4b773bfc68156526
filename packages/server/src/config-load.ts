import {
  configSettings,
  type RawSettings,
  readSettings,
  type SettingSource,
  type SettingSpec,
} from '@muster/host';
import { type ServerConfig, serverConfigFrom } from './config.js';
import { ConfigError } from './errors.js';
import { SERVER_SETTINGS } from './settings.js';

/** What `muster server` and `muster demo` read: `--config` and `--print-config`, then every setting. */
export const SERVER_COMMAND_SETTINGS: readonly SettingSpec[] = [
  ...configSettings('MUSTER_CONFIG', 'listen = "0.0.0.0:8443"'),
  ...SERVER_SETTINGS,
];

/** A validated configuration with the raw settings it came from, and where each came from. */
export interface LoadedServerSettings {
  readonly config: ServerConfig;
  readonly values: RawSettings;
  readonly sources: Readonly<Record<string, SettingSource>>;
  /** `--print-config` was given: show the settings, start nothing. */
  readonly printConfig: boolean;
}

/**
 * Reads and validates the server's configuration from a command line, the environment and a
 * config file (`--config` or MUSTER_CONFIG), in that order of precedence: what `muster server`
 * and `muster demo` run. Bad flags, variables, files, keys and values are listed together in one
 * ConfigError. `defaults` stand in for settings given no way at all (the demo's).
 */
export function loadServerSettings(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  defaults: RawSettings = {},
): LoadedServerSettings {
  const { values, problems, positionals, sources } = readSettings(SERVER_COMMAND_SETTINGS, argv, env, {
    flagsAsProblems: true,
  });
  if (positionals.length > 0) problems.push(`unexpected argument "${positionals[0]}"`);
  const merged = { ...defaults, ...values };
  let config: ServerConfig;
  try {
    config = serverConfigFrom(merged);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError([...problems, ...err.problems]);
    throw err;
  }
  // Thrown outside the try: inside, the catch would add these problems a second time.
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, values: merged, sources, printConfig: values['print-config'] === true };
}

/** loadServerSettings' configuration alone. */
export function loadServerConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  defaults: RawSettings = {},
): ServerConfig {
  return loadServerSettings(argv, env, defaults).config;
}
