import { constants } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file so that a reader sees either the old content or the new, never a torn one,
 * and a crash or power loss keeps one of them: temp file, fsync, rename, fsync the folder.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have narrowed or widened what open() set
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => {});
    throw err;
  }
  await handle.close();
  await rename(temp, path);
  const folder = await open(dir, constants.O_RDONLY);
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Creates a folder that only its owner can enter, if it does not exist yet. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

/** Thrown when a secret file can be read by someone other than its owner. */
export class ExposedSecretError extends Error {
  constructor(
    readonly path: string,
    readonly mode: number,
  ) {
    super(
      `${path} is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `run: chmod 600 ${path}`,
    );
    this.name = 'ExposedSecretError';
  }
}

/** Refuses secret files that group or others can read or write. Missing files are fine. */
export async function assertPrivateFiles(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info && (info.mode & 0o077) !== 0) throw new ExposedSecretError(path, info.mode);
  }
}
