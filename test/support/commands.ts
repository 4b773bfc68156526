import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Command,
  type CommandTarget,
  type CommandView,
  FINAL_TARGET_STATES,
  formatPublicKey,
  keyFingerprint,
  type Policy,
  type SignedCommand,
  type SignedPolicy,
  signCommand,
  signPolicy,
} from '@muster/proto';
import type { InProcessServer } from './in-process.js';
import { waitFor } from './processes.js';

/** An operator's key pair as `muster operator keygen` makes one. */
export interface Operator {
  name: string;
  privateKey: KeyObject;
  publicKey: string;
}

export function makeOperator(name: string): Operator {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKey: formatPublicKey(publicKey) };
}

/** The fleet root a server made in its data dir on first start, as `muster policy sign` reads it. */
export function dataDirRoot(dataDir: string): { privateKey: KeyObject; publicKey: string; pin: string } {
  const privateKey = createPrivateKey(readFileSync(join(dataDir, 'root.key'), 'utf8'));
  const publicKey = readFileSync(join(dataDir, 'root.pub'), 'utf8').trim();
  return { privateKey, publicKey, pin: keyFingerprint(publicKey) };
}

export function signedPolicy(policy: Policy, root: KeyObject): SignedPolicy {
  return { policy, signature: signPolicy(policy, root) };
}

/** A command as `muster run` makes it, signed by `operator`; `overrides` bend it for bad-input tests. */
export function command(
  operator: Operator,
  target: CommandTarget,
  action: string,
  args: Record<string, string> = {},
  overrides: Partial<Command> = {},
): SignedCommand {
  const now = Date.now();
  const body: Command = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    operator: operator.name,
    target,
    action,
    args,
    ...overrides,
  };
  return { command: body, signature: signCommand(body, operator.privateKey) };
}

/** Lines in a file the test's actions append to: how many times an action really ran. */
export function marks(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
    return 0;
  }
}

/** The test policy: what the actions do is written to files under `dir`, so a test can count runs. */
export function testPolicy(dir: string, operators: Operator[], version = 1): Policy {
  const marksFile = join(dir, 'marks');
  const web = {
    echo: {
      argv: ['echo', '{text}'],
      args: { text: { pattern: '[A-Za-z0-9 _.-]*' } },
      timeoutSec: 10,
      maxOutputBytes: 4096,
    },
    mark: { argv: ['/bin/sh', '-c', `echo ran >> ${marksFile}`], timeoutSec: 10, maxOutputBytes: 1024 },
    'slow-mark': {
      argv: ['/bin/sh', '-c', `echo ran >> ${marksFile}; exec sleep 30`],
      timeoutSec: 60,
      maxOutputBytes: 1024,
    },
    flood: { argv: ['head', '-c', String(1024 ** 3), '/dev/zero'], timeoutSec: 120, maxOutputBytes: 1024 },
    zeros: {
      argv: ['/bin/sh', '-c', 'head -c 100000 /dev/zero; head -c 100000 /dev/zero >&2'],
      timeoutSec: 10,
      maxOutputBytes: 64 * 1024,
    },
    hang: {
      argv: ['/bin/sh', '-c', `sleep 1000 & echo $! > ${join(dir, 'child.pid')}; wait`],
      timeoutSec: 1,
      maxOutputBytes: 1024,
    },
    'cat-file': {
      argv: ['cat', '{path}'],
      args: { path: { pattern: '/[A-Za-z0-9_./-]+' } },
      timeoutSec: 10,
      maxOutputBytes: 4096,
    },
    'shell-echo': {
      argv: ['echo', '{word}'],
      args: { word: { pattern: '.*' } },
      shell: true,
      timeoutSec: 10,
      maxOutputBytes: 4096,
    },
  };
  return {
    version,
    operators: operators.map((op) => ({
      name: op.name,
      publicKey: op.publicKey,
      profiles: op.name === 'bob' ? ['db'] : ['web'],
    })),
    profiles: { web: { actions: web }, db: { actions: { echo: web.echo } } },
  };
}

/** Polls a command until every target has an answer. */
export async function answered(t: InProcessServer, id: string): Promise<CommandView> {
  return waitFor(`command ${id} to be answered everywhere`, async () => {
    const res = await t.admin('GET', `/v1/commands/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const view = res.json as CommandView;
    return view.targets!.every((x) => FINAL_TARGET_STATES.includes(x.state)) ? view : undefined;
  });
}
