import { execFile } from 'node:child_process';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { arch, cpus, freemem, hostname, loadavg, platform, release, totalmem, uptime } from 'node:os';
import { type Facts, type Heartbeat, MUSTER_VERSION } from '@muster/proto';

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
  } catch {}
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
  } catch {}
  const disks: Heartbeat['disks'] = [];
  for (const mount of mounts.slice(0, 64)) {
    try {
      const s = await statfs(mount);
      disks.push({
        mount: mount.slice(0, 512),
        totalBytes: s.blocks * s.bsize,
        freeBytes: s.bavail * s.bsize,
      });
    } catch {}
  }
  return disks;
}

async function serviceStates(names: readonly string[]): Promise<Heartbeat['services']> {
  if (names.length === 0) return [];
  const running = await runningCommands();
  return Promise.all(
    names.map(async (name) => ({ name, active: (await systemdActive(name)) ?? running.has(name) })),
  );
}

/** `systemctl is-active`, or undefined where systemd does not run. */
function systemdActive(name: string): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    execFile('systemctl', ['is-active', '--quiet', name], { timeout: 5000 }, (err) => {
      if (!err) return resolve(true);
      const code = (err as { code?: unknown }).code;
      // 3 = inactive; anything else (no systemctl, no systemd as init) means we cannot tell this way.
      resolve(code === 3 ? false : undefined);
    });
  });
}

/** Names of running processes, for hosts without systemd. */
async function runningCommands(): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm) names.add(comm.trim());
    }
  } catch {}
  return names;
}
