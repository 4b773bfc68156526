import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { ServerError, UsageError, writeFileAtomic } from '@muster/host';
import { canonicalJson, type OperatorView, type Policy, type PolicyState, signPolicy } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient, ConnectionError } from '../client.js';
import type { Command } from '../command.js';
import { readPrivateKey } from '../keys.js';
import { unifiedDiff } from '../line-diff.js';
import { KEY_SETTING, readPolicyFile, rootKeyFile } from './policy-file.js';

export const policyEdit: Command = {
  path: ['policy', 'edit'],
  summary: 'edit the next policy version in $EDITOR, then sign it with the root key and push it',
  details:
    'Starts from the policy in force (or a small example), with the version raised and every\n' +
    'registered operator (muster operator add) added. After the editor closes it shows the diff\n' +
    'against the policy in force and asks before signing; when nothing changed it signs and\n' +
    'pushes nothing. An edit that does not validate, or is not pushed, is kept in a file it names;\n' +
    'continue from it with --from FILE. With --out the draft is only written there, for signing on\n' +
    'an offline machine with `muster policy sign`.\n\nExample:\n  EDITOR=nano muster policy edit',
  settings: [
    KEY_SETTING,
    {
      flag: 'out',
      kind: 'string',
      value: 'FILE',
      help: 'write the draft here instead of editing, signing and pushing it',
    },
    {
      flag: 'from',
      kind: 'string',
      value: 'FILE',
      help: 'start the edit from FILE (such as a kept edit) instead of the policy in force',
    },
    { flag: 'yes', kind: 'boolean', help: 'sign and push without asking (for scripts)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, env }) {
    const client = adminClient(values);
    const [state, { items: operators }] = await Promise.all([
      client.call<PolicyState>('GET', '/v1/policy'),
      client.call<{ items: OperatorView[] }>('GET', '/v1/operators'),
    ]);
    const current = state.current?.policy;
    const draft = nextDraft(current, operators);
    const text = values.from ? readDraft(values.from as string) : `${JSON.stringify(draft, null, 2)}\n`;
    if (values.out) {
      await writeFileAtomic(resolve(values.out as string), text, 0o644);
      console.log(`draft of policy version ${draft.version} written to ${values.out}`);
      return 0;
    }
    const { privateKey } = readPrivateKey(rootKeyFile(values));
    const dir = mkdtempSync(join(tmpdir(), 'muster-policy-'));
    const file = join(dir, `policy-v${draft.version}.json`);
    writeFileSync(file, text, { mode: 0o600 });
    const policy = editInEditor(file, env);
    if (current && sameRules(policy, current)) {
      rmSync(dir, { recursive: true, force: true });
      console.log(
        `the policy did not change: nothing was signed or pushed (version ${current.version} stays in force)`,
      );
      return 0;
    }
    const before = current ? `${JSON.stringify(current, null, 2)}\n` : '';
    const after = `${JSON.stringify(policy, null, 2)}\n`;
    process.stdout.write(
      unifiedDiff(before, after, [
        current ? `policy version ${current.version} (in force)` : 'no policy',
        `policy version ${policy.version} (edited)`,
      ]),
    );
    for (const line of operatorChanges(current, policy)) console.log(line);
    if (!(await confirmed(values.yes === true, policy.version, file))) {
      console.log(`nothing was signed or pushed; your edit is kept in ${file}`);
      return 1;
    }
    try {
      await client.call('POST', '/v1/policy', { policy, signature: signPolicy(policy, privateKey) });
    } catch (err) {
      throw keptIn(err, file);
    }
    rmSync(dir, { recursive: true, force: true });
    console.log(`policy version ${policy.version} signed and pushed; agents get it now`);
    return 0;
  },
};

function readDraft(path: string): string {
  try {
    return readFileSync(resolve(path), 'utf8');
  } catch (err) {
    throw new UsageError(`--from: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Runs the editor on `file` and reads the result; on any failure the file stays, named in the error. */
function editInEditor(file: string, env: NodeJS.ProcessEnv): Policy {
  const editor = (env.VISUAL || env.EDITOR || 'vi').trim();
  // `EDITOR="code --wait"` is common: the words after the program are its arguments.
  const [program, ...args] = editor.split(/\s+/);
  const done = spawnSync(program!, [...args, file], { stdio: 'inherit', shell: false });
  if (done.error || done.status !== 0)
    throw new Error(`the editor "${editor}" failed; nothing was pushed; the draft is kept in ${file}`);
  try {
    return readPolicyFile(file).policy;
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message}; nothing was pushed; your edit is kept in ${file} (fix it, then: muster policy edit --from ${file})`,
    );
  }
}

/** True when only the version differs: signing it would change nothing any agent does. */
function sameRules(a: Policy, b: Policy): boolean {
  return canonicalJson({ ...a, version: 0 }) === canonicalJson({ ...b, version: 0 });
}

/** What the edit does to who may sign commands, said plainly under the diff. */
export function operatorChanges(before: Policy | undefined, after: Policy): string[] {
  const old = new Map((before?.operators ?? []).map((op) => [op.name, op]));
  const lines: string[] = [];
  for (const op of after.operators) {
    const was = old.get(op.name);
    if (!was) lines.push(`adds operator ${op.name} (profiles ${op.profiles.join(',')})`);
    else if (was.publicKey !== op.publicKey) lines.push(`changes the key of operator ${op.name}`);
    else if (was.profiles.join(',') !== op.profiles.join(','))
      lines.push(`changes operator ${op.name}'s profiles to ${op.profiles.join(',')}`);
    old.delete(op.name);
  }
  for (const name of old.keys()) lines.push(`removes operator ${name}`);
  return lines;
}

/** `--yes`, or a `y` typed at the terminal; without a terminal to ask on it refuses. */
async function confirmed(yes: boolean, version: number, file: string): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY)
    throw new UsageError(
      `no terminal to ask on: pass --yes to sign and push version ${version}; your edit is kept in ${file}`,
    );
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(
      `Sign policy version ${version} with the fleet root key and push it? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** The same failure, saying where the edit that was not pushed is. */
function keptIn(err: unknown, file: string): Error {
  const tail = `; your edit is kept in ${file}`;
  if (err instanceof ServerError)
    return new ServerError(
      err.status,
      { ...err.problem, detail: `${err.message}${tail}` },
      err.retryAfterSec,
    );
  if (err instanceof ConnectionError) return new ConnectionError(`${err.message}${tail}`);
  return new Error(`${(err as Error).message}${tail}`);
}

/** The next version: the one in force (or a starting example) plus every registered operator. */
export function nextDraft(current: Policy | undefined, operators: readonly OperatorView[]): Policy {
  const base: Policy = current
    ? structuredClone(current)
    : {
        version: 0,
        operators: [],
        profiles: {
          default: {
            actions: {
              uptime: {
                argv: ['uptime'],
                timeoutSec: 10,
                maxOutputBytes: 4096,
                description: 'how long the host is up',
              },
            },
          },
        },
      };
  for (const op of operators) {
    const listed = base.operators.find((o) => o.name === op.name);
    if (listed) listed.publicKey = op.publicKey;
    else base.operators.push({ name: op.name, publicKey: op.publicKey, profiles: op.profiles });
  }
  return { ...base, version: base.version + 1 };
}
