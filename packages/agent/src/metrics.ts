import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { arch, cpus, freemem, hostname, loadavg, platform, release, totalmem, uptime } from 'node:os';
import { basename } from 'node:path';
import { type Facts, type Heartbeat, MUSTER_VERSION, type Service } from '@muster/proto';

/** Facts a host reports once, at enrollment. */
export function hostFacts(): Facts {
  return {
    hostname: hostname().slice(0, 253),
    os: platform(),
    arch: arch(),
    kernel: release().slice(0, 256),
    cpus: cpus().length,
    memoryBytes: totalmem(),
    agentVersion: MUSTER_VERSION,
  };
}

const REAL_FILESYSTEMS = new Set([
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'btrfs',
  'zfs',
  'vfat',
  'exfat',
  'f2fs',
  'overlay',
  'apfs',
]);

/** Samples CPU use between calls, so each heartbeat reports the interval since the last. */
export class MetricsSampler {
  private lastCpu = cpuTimes();

  constructor(private readonly services: readonly string[]) {}

  async sample(seq: number, certNotAfter: string): Promise<Omit<Heartbeat, 'sentAt'>> {
    const now = cpuTimes();
    const busy = now.busy - this.lastCpu.busy;
    const total = now.total - this.lastCpu.total;
    this.lastCpu = now;
    const [memory, disks, services] = await Promise.all([
      memoryInfo(),
      diskUsage(),
      serviceStates(this.services),
    ]);
    const load = loadavg();
    return {
      seq,
      uptimeSec: Math.round(uptime()),
      load: [round2(load[0]!), round2(load[1]!), round2(load[2]!)],
      cpuPct: total > 0 ? round2(Math.min(100, (100 * busy) / total)) : 0,
      memory,
      disks,
      services,
      certNotAfter,
      checks: [],
    };
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    const sum = t.user + t.nice + t.sys + t.idle + t.irq;
    total += sum;
    busy += sum - t.idle;
  }
  return { busy, total };
}

async function memoryInfo(): Promise<Heartbeat['memory']> {
  const totalBytes = totalmem();
  try {
    // MemAvailable counts reclaimable cache; free memory alone makes every Linux host look full.
    const text = await readFile('/proc/meminfo', 'utf8');
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(text);
    if (match) return { totalBytes, availableBytes: Math.min(totalBytes, Number(match[1]) * 1024) };
  } catch {
    // No /proc (not Linux): free memory is the best the host offers, not a failure.
  }
  return { totalBytes, availableBytes: freemem() };
}

async function diskUsage(): Promise<Heartbeat['disks']> {
  let mounts = ['/'];
  try {
    const text = await readFile('/proc/mounts', 'utf8');
    const seen = new Set<string>();
    mounts = [];
    for (const line of text.split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!device || !mount || !type || !REAL_FILESYSTEMS.has(type) || seen.has(device)) continue;
      seen.add(device);
      mounts.push(mount.replace(/\\040/g, ' '));
    }
    if (!mounts.includes('/')) mounts.unshift('/');
  } catch {
    // No /proc (not Linux): the root filesystem alone is reported.
  }
  const disks: Heartbeat['disks'] = [];
  for (const mount of mounts.slice(0, 64)) {
    try {
      const s = await statfs(mount);
      disks.push({
        mount: mount.slice(0, 512),
        totalBytes: s.blocks * s.bsize,
        freeBytes: s.bavail * s.bsize,
      });
    } catch {
      // A mount gone or unreadable since /proc/mounts was read is left out of this heartbeat.
    }
  }
  return disks;
}

/**
 * Each service's state. `state` is sent only when it is `unknown`: a plain running or stopped
 * service goes as `{name, active}`, exactly as servers that predate `state` read it.
 */
async function serviceStates(names: readonly string[]): Promise<Heartbeat['services']> {
  if (names.length === 0) return [];
  if (systemdRuns()) return Promise.all(names.map(systemdState));
  // No service manager to ask: a process of that name says it runs; its absence says nothing
  // for sure (the service may run under another name), so the state is unknown, with why.
  const running = await runningCommands();
  const why =
    process.platform === 'linux'
      ? 'this host was not booted with systemd'
      : `no systemd on ${process.platform}`;
  return names.map((name) =>
    running?.has(name.slice(0, COMM_LENGTH))
      ? { name, active: true }
      : {
          name,
          active: false,
          state: 'unknown' as const,
          reason: `systemd not available (${why})${running ? ` and no process named ${name} runs` : ''}`,
        },
  );
}

/** sd_booted(3): systemd is the init system exactly when this directory exists. */
function systemdRuns(): boolean {
  return existsSync('/run/systemd/system');
}

/** `systemctl is-active`: 0 active, 3 inactive, 4 no such unit; anything else cannot be read as either. */
function systemdState(name: string): Promise<Service> {
  return new Promise((resolve) => {
    execFile('systemctl', ['is-active', '--quiet', name], { timeout: 5000 }, (err) => {
      if (!err) return resolve({ name, active: true });
      const { code, killed } = err as { code?: unknown; killed?: boolean };
      if (code === 3) return resolve({ name, active: false });
      const reason = killed
        ? 'systemctl did not answer within 5 s'
        : code === 4
          ? `systemd has no unit named ${name}`
          : typeof code === 'number'
            ? `systemctl is-active exited ${code}`
            : `systemctl cannot be run (${String(code ?? err.message)})`;
      resolve({ name, active: false, state: 'unknown', reason });
    });
  });
}

/** The kernel keeps this many characters of a process's name in /proc/PID/comm. */
const COMM_LENGTH = 15;

/** Names of running processes, or undefined where /proc cannot be read. */
async function runningCommands(): Promise<Set<string> | undefined> {
  const names = new Set<string>();
  try {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm) names.add(comm.trim());
      // comm is the main thread's name, which a program may change (Node 24 names it
      // MainThread), so the program's own name from argv[0] counts too.
      const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0];
      if (argv0) names.add(basename(argv0).slice(0, COMM_LENGTH));
    }
  } catch {
    return undefined;
  }
  return names;
}
