import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { cleanEnv, DEADLINE_MS, describeExit, type Exit, MusterProcess } from './processes.js';

/** What a finished `muster` command left behind. */
export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** A `muster server` the test started, with the URLs it printed. */
export interface ServerUnderTest {
  process: MusterProcess;
  dataDir: string;
  /** `https://127.0.0.1:PORT`, as bound. */
  agentUrl: string;
  /** `http://127.0.0.1:PORT`, as bound. */
  adminUrl: string;
  /** The flags an admin verb needs to reach this server with its admin token. */
  adminFlags: string[];
}

/**
 * Everything one e2e file starts: processes, temp dirs and PostgreSQL databases. `cleanup()`
 * kills what still runs and removes the rest; call it from an `after` hook so it runs on failure.
 */
export class Sandbox {
  /** Children run here, so a default `./.muster` never lands in the repository. */
  readonly cwd: string;
  private readonly processes: MusterProcess[] = [];
  private readonly dirs: string[] = [];
  private readonly databases: Array<() => Promise<void>> = [];

  constructor() {
    this.cwd = this.tempDir('cwd');
  }

  tempDir(purpose: string): string {
    const dir = mkdtempSync(join(tmpdir(), `muster-e2e-${purpose}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Starts `muster ARGS…` and returns at once. */
  spawn(args: readonly string[], env: Record<string, string> = {}): MusterProcess {
    const proc = new MusterProcess(args, { cwd: this.cwd, env: cleanEnv(env) });
    this.processes.push(proc);
    return proc;
  }

  /** Runs `muster ARGS…` to its end (within the deadline) and returns its exit and output. */
  async run(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
    const proc = this.spawn(args, env);
    const exit = await proc.waitForExit();
    return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
  }

  /** Runs a verb that must succeed with `--json` and parses its stdout, which must be JSON only. */
  async json<T = any>(args: readonly string[]): Promise<T> {
    const result = await this.run([...args, '--json']);
    assert.equal(result.code, 0, `muster ${args.join(' ')} --json failed: ${describeResult(result)}`);
    try {
      return JSON.parse(result.stdout) as T;
    } catch {
      assert.fail(`muster ${args.join(' ')} --json printed more than JSON on stdout:\n${result.stdout}`);
    }
  }

  /**
   * Starts `muster server` on ports the OS picks, with a 1 s heartbeat interval so that a node
   * goes offline within seconds, and waits until it prints where it listens.
   */
  async startServer(
    opts: {
      dataDir?: string;
      db?: string;
      /** Fixed addresses, to start a server again where a console or agents expect it. */
      listen?: string;
      adminListen?: string;
      /** More `muster server` flags. */
      args?: string[];
    } = {},
  ): Promise<ServerUnderTest> {
    const dataDir = opts.dataDir ?? this.tempDir('server');
    const proc = this.spawn([
      'server',
      '--data-dir',
      dataDir,
      '--listen',
      opts.listen ?? '127.0.0.1:0',
      '--admin-listen',
      opts.adminListen ?? '127.0.0.1:0',
      '--heartbeat-interval',
      '1s',
      '--log-level',
      'warn',
      ...(opts.db ? ['--db', opts.db] : []),
      ...(opts.args ?? []),
    ]);
    const [agentUrl, adminUrl] = await proc.waitForOutput('the server to print its URLs', (p) => {
      const agent = /^ {2}agent plane {2}(https:\/\/127\.0\.0\.1:\d+)/m.exec(p.stdout)?.[1];
      const admin = /^ {2}admin API {4}(https?:\/\/127\.0\.0\.1:\d+)/m.exec(p.stdout)?.[1];
      return agent && admin ? [agent, admin] : undefined;
    });
    return {
      process: proc,
      dataDir,
      agentUrl,
      adminUrl,
      adminFlags: ['--url', adminUrl, '--data-dir', dataDir],
    };
  }

  /** A fresh database on the server MUSTER_TEST_PG_URL names; dropped at cleanup. */
  async postgresDatabase(): Promise<string> {
    const base = process.env.MUSTER_TEST_PG_URL;
    if (!base) throw new Error('MUSTER_TEST_PG_URL is not set');
    const name = `muster_e2e_${randomBytes(6).toString('hex')}`;
    await withClient(base, (c) => c.query(`CREATE DATABASE ${name}`));
    this.databases.push(async () => {
      await withClient(base, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    });
    const url = new URL(base);
    url.pathname = `/${name}`;
    return url.toString();
  }

  /** Kills every process still running, then drops the databases and removes the temp dirs. */
  async cleanup(): Promise<void> {
    await Promise.all(
      this.processes.filter((p) => p.running).map((p) => p.stop('SIGKILL', DEADLINE_MS).catch(() => {})),
    );
    for (const drop of this.databases) await drop().catch(() => {});
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export function describeResult(result: CliResult): string {
  return `${describeExit(result)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** Errors are one clear sentence: no stack trace unless --debug. */
export function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .+\(?.+:\d+:\d+\)?$/m, `stderr carries a stack trace:\n${stderr}`);
}

/** The postgres dialect joins wherever MUSTER_TEST_PG_URL is set, as in the store tests. */
export function dialects(): Array<'sqlite' | 'postgres'> {
  return process.env.MUSTER_TEST_PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}
