import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ACTION_ENV, execute } from './executor.js';

const dir = mkdtempSync(join(tmpdir(), 'muster-executor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const run = (argv: string[], opts: Partial<Parameters<typeof execute>[1]> = {}) =>
  execute(argv, { timeoutMs: 10_000, maxOutputBytes: 4096, ...opts });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

async function gone(pid: number, deadlineMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

describe('execute', () => {
  test('the action sees only the scrubbed environment, nothing of the agent', async () => {
    process.env.MUSTER_EXECUTOR_SECRET = 'do-not-leak';
    try {
      const result = await run(['env']);
      assert.equal(result.status, 'succeeded');
      assert.doesNotMatch(result.stdoutTail, /MUSTER_EXECUTOR_SECRET|do-not-leak/);
      const seen = Object.fromEntries(
        result.stdoutTail
          .split('\n')
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      assert.deepEqual(seen, { ...ACTION_ENV });
    } finally {
      delete process.env.MUSTER_EXECUTOR_SECRET;
    }
  });

  test('runs in / and without a shell: $(id), globs and ; are literal arguments', async () => {
    const result = await run(['printf', '%s|', '$(id)', '*', 'a;b', '`id`', '$HOME']);
    assert.equal(result.status, 'succeeded');
    assert.equal(result.stdoutTail, '$(id)|*|a;b|`id`|$HOME|');
    assert.equal((await run(['pwd'])).stdoutTail, '/\n');
  });

  test('exit codes: 0 succeeded, anything else failed with the code in the reason', async () => {
    const ok = await run(['true']);
    assert.equal(ok.status, 'succeeded');
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.reason, undefined);
    const failed = await run(['/bin/sh', '-c', 'echo oops >&2; exit 42']);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.exitCode, 42);
    assert.equal(failed.reason, 'exited with code 42');
    assert.equal(failed.stderrTail, 'oops\n');
    const killed = await run(['/bin/sh', '-c', 'kill -9 $$']);
    assert.equal(killed.status, 'failed');
    assert.equal(killed.exitCode, null);
    assert.equal(killed.reason, 'killed by SIGKILL');
  });

  test('a program that does not exist is a failed run with the reason, not a throw', async () => {
    const result = await run(['/nonexistent/muster-no-such-program', 'x']);
    assert.equal(result.status, 'failed');
    assert.equal(result.exitCode, null);
    assert.match(result.reason ?? '', /cannot run \/nonexistent\/muster-no-such-program: ENOENT/);
    assert.equal(result.stdoutTail, '');
    assert.equal(result.outputSha256, createHash('sha256').digest('hex'));
  });

  test('tails keep the last N bytes of each stream; the hash covers all of stdout', async () => {
    const script =
      'i=0; while [ $i -lt 2000 ]; do printf "line-%04d\\n" $i; printf "err-%04d\\n" $i >&2; i=$((i+1)); done';
    const result = await run(['/bin/sh', '-c', script], { maxOutputBytes: 100 });
    assert.equal(result.status, 'succeeded');
    let all = '';
    for (let i = 0; i < 2000; i++) all += `line-${String(i).padStart(4, '0')}\n`;
    assert.equal(Buffer.byteLength(result.stdoutTail), 100);
    assert.equal(result.stdoutTail, all.slice(-100));
    assert.ok(result.stdoutTail.endsWith('line-1999\n'));
    assert.equal(Buffer.byteLength(result.stderrTail), 100);
    assert.ok(result.stderrTail.endsWith('err-1999\n'));
    assert.equal(result.outputSha256, createHash('sha256').update(all).digest('hex'));
  });

  test('a cap of 0 keeps nothing; output shorter than the cap is kept whole', async () => {
    const none = await run(['echo', 'hello'], { maxOutputBytes: 0 });
    assert.equal(none.stdoutTail, '');
    assert.equal(none.outputSha256, createHash('sha256').update('hello\n').digest('hex'));
    assert.equal((await run(['echo', 'hello'], { maxOutputBytes: 4096 })).stdoutTail, 'hello\n');
  });

  test('at the timeout the whole process group is killed, children included', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // The run returning at all (the test runner's timeout is far below 1000 s) and the child
    // being gone show the kill; how soon it returned is a timing, not asserted here.
    const result = await run(['/bin/sh', '-c', `sleep 1000 & echo $! > ${pidFile}; echo started; wait`], {
      timeoutMs: 500,
      killGraceMs: 200,
    });
    assert.equal(result.status, 'timed_out');
    assert.match(result.reason ?? '', /killed after the timeout/);
    assert.equal(result.stdoutTail, 'started\n');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    assert.ok(await gone(pid), `the background child ${pid} outlived the timeout`);
  });

  test('a program that ignores SIGTERM is killed after the grace', async () => {
    const result = await run(['/bin/sh', '-c', 'trap "" TERM; echo armed; while :; do sleep 0.05; done'], {
      timeoutMs: 300,
      killGraceMs: 300,
    });
    assert.equal(result.status, 'timed_out');
    assert.equal(result.stdoutTail, 'armed\n');
  });

  test('children left behind by an action that exits are killed with it', async () => {
    const pidFile = join(dir, 'orphan.pid');
    const result = await run(['/bin/sh', '-c', `sleep 1000 >/dev/null 2>&1 & echo $! > ${pidFile}; exit 0`]);
    assert.equal(result.status, 'succeeded');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await gone(pid), `the background child ${pid} outlived its action`);
  });

  test('aborting (the agent stops) interrupts the run', async () => {
    const controller = new AbortController();
    const running = run(['sleep', '30'], { signal: controller.signal, killGraceMs: 200 });
    setTimeout(() => controller.abort(), 100);
    const result = await running;
    assert.equal(result.status, 'interrupted');
    assert.equal(result.exitCode, null);
  });
});
