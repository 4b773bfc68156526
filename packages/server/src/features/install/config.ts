import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawSettings } from '@muster/host';

/** The install feature's part of the server config. */
export interface InstallConfig {
  /** Where the agent package is (`--package-dir`); unset: `<repo>/dist-package`, if it is ever built. */
  readonly packageDir?: string;
}

/** Reads `--package-dir`: a directory that must exist; what is in it is checked at each request. */
export function installSettings(raw: RawSettings, cwd: string, problems: string[]): InstallConfig {
  const text = raw['package-dir'] as string | undefined;
  if (text === undefined) return {};
  const packageDir = resolve(cwd, text);
  let isDir = false;
  try {
    isDir = statSync(packageDir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) problems.push(`--package-dir: ${text} is not a directory (npm run package writes one)`);
  return { packageDir };
}
