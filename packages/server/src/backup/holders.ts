import { readdir, readFile, readlink } from 'node:fs/promises';
import { sep } from 'node:path';

/** A process that has a file open in the place a restore would write. */
export interface Holder {
  pid: number;
  /** Its command line, for the message. */
  command: string;
  /** The file it holds. */
  file: string;
}

/**
 * The processes that hold a file open inside `dir` or one of `files`, found through each
 * process's open file descriptors in /proc (Linux; processes of other users are visible only to
 * root). The server keeps no lock or pid file, but a server on SQLite holds its store (and its
 * -wal and -shm) open for as long as it runs, which is what is looked for. Where /proc is not
 * there, none are found.
 */
export async function processesHolding(dir: string, files: readonly string[] = []): Promise<Holder[]> {
  const inside = (path: string) => path.startsWith(dir + sep) || path === dir || files.includes(path);
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const holders: Holder[] = [];
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const file = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!inside(file.replace(/ \(deleted\)$/, ''))) continue;
      holders.push({ pid: Number(pid), command: await commandOf(pid), file });
      break;
    }
  }
  return holders;
}

async function commandOf(pid: string): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const words = raw.split('\0').filter(Boolean);
  const shown = words.join(' ');
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown || `pid ${pid}`;
}
