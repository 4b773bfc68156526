import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root, from test/dist/support where this file runs. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The `muster` program as the package's `bin` runs it. */
export const MUSTER_CLI = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

/** How long any single wait in the e2e suite may take before it fails with what it saw. */
export const DEADLINE_MS = 20_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `muster` process the test started, with everything it has written so far. */
export class MusterProcess {
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;

  constructor(
    readonly args: readonly string[],
    opts: { cwd: string; env: NodeJS.ProcessEnv },
  ) {
    this.child = spawn(process.execPath, [MUSTER_CLI, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      // 'close' rather than 'exit': by then both pipes are drained, so the output is complete.
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** The child's process id, as `ps` and a lock file show it. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** `muster server …`, for failure messages. */
  get title(): string {
    const firstFlag = this.args.findIndex((a) => a.startsWith('-'));
    return `muster ${this.args.slice(0, Math.min(2, firstFlag < 0 ? 2 : firstFlag)).join(' ')}`;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Sends the signal and waits, within the deadline, for the process to end. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEADLINE_MS): Promise<Exit> {
    this.signal(signal);
    return this.waitForExit(timeoutMs);
  }

  async waitForExit(timeoutMs = DEADLINE_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.title} did not exit within ${timeoutMs} ms\n${this.transcript()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the process has written something `probe` recognises; fails early if it exits first. */
  async waitForOutput<T>(what: string, probe: (p: this) => T | undefined): Promise<T> {
    return waitFor(what, async () => {
      const found = probe(this);
      if (found !== undefined) return found;
      if (!this.running)
        throw new Error(
          `${this.title} exited (${describeExit(this.exit!)}) before ${what}\n${this.transcript()}`,
        );
      return undefined;
    });
  }

  /** The JSON log lines it wrote to stderr; other lines are skipped. */
  logLines(): Array<Record<string, unknown>> {
    return this.stderr.split('\n').flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return parsed && typeof parsed === 'object' ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  transcript(): string {
    return `--- ${this.title} stdout ---\n${this.stdout}\n--- ${this.title} stderr ---\n${this.stderr}`;
  }
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined, for at most
 * `timeoutMs`. A probe that throws ends the wait with its error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = DEADLINE_MS, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The environment children get: the test's own, minus any Muster settings of whoever runs the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MUSTER_')) env[key] = value;
  }
  return { ...env, ...extra };
}
