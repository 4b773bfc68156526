import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

/** What one run of an action came to, before it is signed into a receipt. */
export interface Execution {
  status: 'succeeded' | 'failed' | 'timed_out' | 'interrupted';
  reason?: string;
  exitCode: number | null;
  startedAt: string;
  finishedAt: string;
  stdoutTail: string;
  stderrTail: string;
  outputSha256: string;
}

export interface ExecuteOptions {
  timeoutMs: number;
  /** Kept per stream: the last this many bytes. Everything else is hashed and dropped. */
  maxOutputBytes: number;
  /** Aborting kills the action (the agent is stopping); the run then reports `interrupted`. */
  signal?: AbortSignal;
  /** Grace between SIGTERM and SIGKILL at the timeout. */
  killGraceMs?: number;
}

/** The whole environment an action sees: nothing of the agent's own leaks into it. */
export const ACTION_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/',
});

/** The last `cap` bytes of a stream, in bounded memory however much is written. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    if (this.cap === 0) return;
    this.chunks.push(chunk.length > this.cap ? chunk.subarray(chunk.length - this.cap) : chunk);
    this.size += Math.min(chunk.length, this.cap);
    while (this.size - this.chunks[0]!.length >= this.cap) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.cap)).toString('utf8');
  }
}

/**
 * Runs an argv without a shell, in its own process group, with a scrubbed environment, a
 * timeout that kills the whole group, and output kept only as capped tails plus a hash of
 * everything written to stdout. Never throws: a program that cannot start is a failed run.
 */
export function execute(argv: readonly string[], opts: ExecuteOptions): Promise<Execution> {
  const startedAt = new Date().toISOString();
  const stdout = new Tail(opts.maxOutputBytes);
  const stderr = new Tail(opts.maxOutputBytes);
  const hash = createHash('sha256');
  return new Promise((resolve) => {
    let timedOut = false;
    let interrupted = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true, // its own process group, so a timeout reaches its children too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...ACTION_ENV },
      cwd: '/',
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const stop = (why: 'timeout' | 'abort') => {
      if (why === 'timeout') timedOut = true;
      else interrupted = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 2_000).unref();
    };
    const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      stdout.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // What the action left behind dies with it: nothing outlives a command.
      killGroup('SIGKILL');
    });
    const finish = (result: Pick<Execution, 'status' | 'exitCode'> & { reason?: string }) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        ...result,
        startedAt,
        finishedAt: new Date().toISOString(),
        stdoutTail: stdout.text(),
        stderrTail: stderr.text(),
        outputSha256: hash.digest('hex'),
      });
    };
    child.on('error', (err: NodeJS.ErrnoException) =>
      finish({
        status: 'failed',
        exitCode: null,
        reason: `cannot run ${argv[0]}: ${err.code ?? err.message}`,
      }),
    );
    child.on('close', () => {
      if (!exit) return; // 'error' answered already
      if (interrupted)
        return finish({
          status: 'interrupted',
          exitCode: null,
          reason: 'the agent stopped while the command ran',
        });
      if (timedOut)
        return finish({
          status: 'timed_out',
          exitCode: exit.code,
          reason: `killed after the timeout of ${Math.round(opts.timeoutMs / 1000)} s`,
        });
      if (exit.code === 0) return finish({ status: 'succeeded', exitCode: 0 });
      finish({
        status: 'failed',
        exitCode: exit.code,
        reason: exit.code === null ? `killed by ${exit.signal}` : `exited with code ${exit.code}`,
      });
    });
  });
}
