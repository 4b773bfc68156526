import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Receipt } from '@muster/proto';
import { CommandJournal } from './journal.js';

const HOUR = 3_600_000;
const now = Date.UTC(2026, 10, 22, 12);
const roots: string[] = [];
after(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-journal-'));
  roots.push(dir);
  return dir;
}

const file = (dir: string) => join(dir, 'commands', 'journal.jsonl');

function receiptFor(id: string): Receipt {
  return {
    commandId: id,
    nodeId: 'node-1',
    status: 'succeeded',
    exitCode: 0,
    startedAt: new Date(now).toISOString(),
    finishedAt: new Date(now).toISOString(),
    stdoutTail: '',
    stderrTail: '',
    outputSha256: '0'.repeat(64),
    signature: 'c2lnbmF0dXJl',
  };
}

async function accept(
  journal: CommandJournal,
  id: string,
  expiresAt: number,
  how: 'started' | 'done' | 'acked',
): Promise<void> {
  await journal.start({ id, nonce: `nonce-of-${id}`, expiresAt, startedAt: new Date(now).toISOString() });
  if (how === 'started') return;
  await journal.done(id, receiptFor(id));
  if (how === 'acked') await journal.acked(id);
}

describe('the command journal', () => {
  test('every entry survives a reopen: started, answered, and acknowledged', async () => {
    const dir = dataDir();
    const first = await CommandJournal.open(dir, now);
    await accept(first, 'cmd-running', now + HOUR, 'started');
    await accept(first, 'cmd-answered', now + HOUR, 'done');
    await accept(first, 'cmd-acked', now + HOUR, 'acked');

    const again = await CommandJournal.open(dir, now + 1000);
    assert.deepEqual(
      again.unfinished().map((e) => e.id),
      ['cmd-running'],
    );
    assert.deepEqual(
      again.unacked().map((e) => e.id),
      ['cmd-answered'],
    );
    assert.deepEqual(again.unacked()[0]!.receipt, receiptFor('cmd-answered'));
    const acked = again.seen('cmd-acked', 'unrelated-nonce');
    assert.equal(acked?.acked, true);
    assert.deepEqual(acked?.receipt, receiptFor('cmd-acked'));
  });

  test('a nonce is remembered under any command id, across reopens', async () => {
    const dir = dataDir();
    const journal = await CommandJournal.open(dir, now);
    await accept(journal, 'cmd-first', now + HOUR, 'acked');
    assert.equal(journal.seen('cmd-other-id', 'nonce-of-cmd-first')?.id, 'cmd-first');
    const again = await CommandJournal.open(dir, now + HOUR);
    assert.equal(again.seen('cmd-other-id', 'nonce-of-cmd-first')?.id, 'cmd-first');
    assert.equal(again.seen('cmd-first', 'another-nonce')?.id, 'cmd-first');
    assert.equal(again.seen('cmd-never', 'nonce-never'), undefined);
  });

  test('a torn last line (a crash mid-write) is ignored, and the journal goes on from there', async () => {
    const dir = dataDir();
    const journal = await CommandJournal.open(dir, now);
    await accept(journal, 'cmd-whole', now + HOUR, 'done');
    appendFileSync(file(dir), '{"t":"start","id":"cmd-torn","nonce":"nonce-of-cmd-t');

    const reopened = await CommandJournal.open(dir, now);
    assert.equal(reopened.seen('cmd-torn', 'nonce-of-cmd-torn'), undefined, 'a torn start never ran');
    assert.equal(reopened.seen('cmd-whole', 'x')?.receipt?.commandId, 'cmd-whole');
    // What is written next is read back whole: the torn bytes did not swallow it.
    await accept(reopened, 'cmd-next', now + HOUR, 'started');
    const third = await CommandJournal.open(dir, now);
    assert.deepEqual(
      third.unfinished().map((e) => e.id),
      ['cmd-next'],
    );
    assert.equal(third.seen('cmd-whole', 'x')?.receipt?.status, 'succeeded');
  });

  test('acknowledged entries long expired are compacted away; the rest stay', async () => {
    const dir = dataDir();
    const journal = await CommandJournal.open(dir, now);
    await accept(journal, 'cmd-old-acked', now - 2 * HOUR, 'acked');
    await accept(journal, 'cmd-old-unacked', now - 2 * HOUR, 'done');
    await accept(journal, 'cmd-old-unfinished', now - 2 * HOUR, 'started');
    await accept(journal, 'cmd-recent-acked', now - HOUR / 2, 'acked');
    await accept(journal, 'cmd-live', now + HOUR, 'acked');

    const reopened = await CommandJournal.open(dir, now);
    assert.equal(reopened.seen('cmd-old-acked', 'nonce-of-cmd-old-acked'), undefined);
    for (const id of ['cmd-old-unacked', 'cmd-old-unfinished', 'cmd-recent-acked', 'cmd-live'])
      assert.equal(reopened.seen(id, `nonce-of-${id}`)?.id, id, `${id} is kept`);
    const text = readFileSync(file(dir), 'utf8');
    assert.doesNotMatch(text, /cmd-old-acked/, 'the compacted file no longer holds it');
    assert.match(text, /cmd-old-unacked/);
    // Compaction keeps one start line per entry, not the history of writes.
    assert.equal(text.split('\n').filter((l) => l.includes('"t":"start"')).length, 4);
  });

  test('acknowledging is idempotent and ignores commands never answered', async () => {
    const dir = dataDir();
    const journal = await CommandJournal.open(dir, now);
    await accept(journal, 'cmd-a', now + HOUR, 'acked');
    await journal.acked('cmd-a');
    await journal.acked('cmd-unknown');
    await accept(journal, 'cmd-b', now + HOUR, 'started');
    await journal.acked('cmd-b');
    const lines = readFileSync(file(dir), 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.filter((l) => l.includes('"t":"acked"')).length, 1);
    const reopened = await CommandJournal.open(dir, now);
    assert.deepEqual(
      reopened.unfinished().map((e) => e.id),
      ['cmd-b'],
    );
  });
});
