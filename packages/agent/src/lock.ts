import { constants } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from '@muster/host';

/** Another live agent holds the data dir: two would keep replacing each other's channel. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
    /** The host the holder runs on, when it is not this one (a data dir on a shared file system). */
    readonly host?: string,
  ) {
    super(
      `data dir in use by pid ${pid}${host ? ` on ${host}` : ''}: another muster agent runs on ${dir}; stop it first, or give this one its own --data-dir` +
        (host
          ? ` (if none runs on ${host} any more, as after a rename of this host, remove ${join(dir, LOCK_FILE)})`
          : ''),
    );
    this.name = 'DataDirInUseError';
  }
}

/** What the lock file holds: the owner's pid, and what tells that pid apart from a later one. */
interface LockOwner {
  pid: number;
  /** Pids and boot ids mean nothing on another host: a lock from one is never judged stale here. */
  host?: string;
  /** The kernel's boot id and the process's start time (Linux): a pid reused after a restart is not the owner. */
  boot?: string;
  start?: string;
}

/** Data dirs this process holds, so that a stale lock naming our own pid (a restarted container) is ours to take. */
const held = new Set<string>();

export const LOCK_FILE = 'agent.lock';

/**
 * Takes the data dir for this process: creates `agent.lock` with O_EXCL, holding this pid. A
 * lock left by a process that is gone is taken over; one held by a live process is refused.
 * Returns the release function.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  await ensurePrivateDir(dir);
  const path = join(dir, LOCK_FILE);
  if (held.has(path)) throw new DataDirInUseError(dir, process.pid);
  // Taken before the first await, so a second caller in this process is refused above.
  held.add(path);
  try {
    await acquire(dir, path);
  } catch (err) {
    held.delete(path);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    held.delete(path);
    await unlink(path).catch(() => {});
  };
}

async function acquire(dir: string, path: string): Promise<void> {
  const me = await ownerOf(process.pid);
  // Two tries: the second after removing a stale lock.
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readOwner(path);
    if (owner?.host && owner.host !== hostname()) throw new DataDirInUseError(dir, owner.pid, owner.host);
    // Another agent made a fresh lock between our removing the stale one and trying again.
    if (attempt > 0 || (owner && (await alive(owner)))) throw new DataDirInUseError(dir, owner?.pid ?? 0);
    // The owner is gone (or died before writing anything readable): the lock is stale.
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  // Two agents removing the same stale lock at once: the one whose lock survived goes on.
  const written = await readOwner(path);
  if (written?.pid !== me.pid || written.start !== me.start)
    throw new DataDirInUseError(dir, written?.pid ?? 0);
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    return Number.isSafeInteger(parsed.pid) && parsed.pid! > 0 ? (parsed as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** True while the process that wrote the lock still runs. */
async function alive(owner: LockOwner): Promise<boolean> {
  if (owner.pid === process.pid) {
    // Our own pid, not held by us: a previous run of this agent that had the same pid.
    return false;
  }
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = await ownerOf(owner.pid);
  if (owner.boot && now.boot && owner.boot !== now.boot) return false;
  if (owner.start && now.start && owner.start !== now.start) return false;
  return true;
}

async function ownerOf(pid: number): Promise<LockOwner> {
  const [boot, stat] = await Promise.all([
    readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => ''),
    readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
  ]);
  // Field 22 of /proc/PID/stat, counted after the command name (which may hold spaces).
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return {
    pid,
    host: hostname(),
    ...(boot.trim() ? { boot: boot.trim() } : {}),
    ...(start ? { start } : {}),
  };
}
