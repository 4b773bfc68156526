import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstallManifest } from '@muster/proto';
import { NotFoundError } from '../../errors.js';

/** `<repo>/dist-package`, where `npm run package` writes, seen from this file in packages/server/dist. */
export function defaultPackageDir(): string {
  return fileURLToPath(new URL('../../../../../dist-package', import.meta.url));
}

const HOW_TO_BUILD =
  'build it with "npm run package" in the server\'s repository, or start the server with --package-dir DIR';

/** The server has no agent package to hand out (or one it cannot read): 404, saying how to make one. */
export class NoPackageError extends NotFoundError {
  constructor(what: string) {
    super(`${what}; ${HOW_TO_BUILD}`, 'no_package');
  }
}

// A file name as package.mjs writes them: one path segment, no leading dot.
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const VERSION = /^v?[0-9A-Za-z.+-]{1,63}$/;

/**
 * The packaged agent in a directory `npm run package` wrote. Read again at each use, so a
 * package built (or rebuilt) while the server runs is served without a restart; while a build
 * is under way its files and manifest may disagree, which the installer's hash check refuses.
 */
export class AgentPackage {
  constructor(readonly dir: string) {}

  /** True when the directory holds a manifest at all (whether it is sound is `manifest()`'s to say). */
  exists(): boolean {
    return existsSync(join(this.dir, 'manifest.json'));
  }

  /**
   * The manifest as package.mjs wrote it, checked: the hashes are the build's, never computed
   * from the files as they are now, so a file changed after the build is caught by the installer.
   */
  manifest(): InstallManifest {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(this.dir, 'manifest.json'), 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new NoPackageError(
        code === 'ENOENT'
          ? 'no agent package on this server'
          : 'the agent package on this server has an unreadable manifest',
      );
    }
    const parsed = parseManifest(raw);
    if (!parsed) throw new NoPackageError('the agent package on this server has a malformed manifest');
    return parsed;
  }

  /** A file the manifest lists, by its exact name; anything else (`..`, a slash, a stranger) is 404. */
  async file(name: string): Promise<{ path: string; size: number; sha256: string }> {
    const listed = this.manifest().files.find((f) => f.name === name);
    if (!listed || !FILE_NAME.test(name)) throw new NotFoundError('no such file in the agent package');
    const path = join(this.dir, listed.name);
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new Error('not a file');
      return { path, size: info.size, sha256: listed.sha256 };
    } catch {
      throw new NoPackageError(`the agent package on this server lists ${name} but lacks the file`);
    }
  }
}

/** `{version, node, files: {name: {sha256, bytes}}}` (package.mjs) as the wire's manifest, or undefined. */
function parseManifest(raw: unknown): InstallManifest | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { version, node, files } = raw as Record<string, unknown>;
  if (typeof version !== 'string' || !VERSION.test(version)) return undefined;
  if (typeof node !== 'string' || !VERSION.test(node)) return undefined;
  if (typeof files !== 'object' || files === null || Array.isArray(files)) return undefined;
  const out: InstallManifest['files'] = [];
  for (const [name, entry] of Object.entries(files as Record<string, unknown>)) {
    const { sha256, bytes } = (entry ?? {}) as Record<string, unknown>;
    if (!FILE_NAME.test(name) || typeof sha256 !== 'string' || !SHA256.test(sha256)) return undefined;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) return undefined;
    out.push({ name, sha256, size: bytes });
  }
  return { version, node, files: out };
}
