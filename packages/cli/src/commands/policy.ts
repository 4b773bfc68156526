import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError, writeFileAtomic } from '@muster/host';
import {
  type OperatorView,
  Policy,
  type PolicyState,
  policyProblems,
  type SignedPolicy,
  signPolicy,
} from '@muster/proto';
import { Value } from '@sinclair/typebox/value';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { readPrivateKey } from '../keys.js';
import { printJson, safe, table } from '../output.js';

const KEY_SETTING = {
  flag: 'key',
  kind: 'string',
  value: 'FILE',
  help: 'the fleet root private key (default <data-dir>/root.key)',
} as const;

export const policyShow: Command = {
  path: ['policy', 'show'],
  summary: 'show the command policy in force: who may run which actions on which profiles',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const state = await adminClient(values).call<PolicyState>('GET', '/v1/policy');
    if (values.json) {
      printJson(state);
      return 0;
    }
    console.log(`fleet root  ${state.rootKey}\n  pin       ${state.rootFingerprint}`);
    if (!state.current) {
      console.log('no policy pushed yet: muster policy edit (or policy sign FILE, then policy push FILE)');
      return 0;
    }
    const { policy } = state.current;
    console.log(`policy      version ${policy.version}\n`);
    console.log(
      table(
        ['OPERATOR', 'PROFILES', 'PUBLIC KEY'],
        policy.operators.map((op) => [safe(op.name), op.profiles.join(','), op.publicKey]),
      ),
    );
    console.log('');
    const rows = Object.entries(policy.profiles).flatMap(([profile, { actions }]) =>
      Object.entries(actions).map(([name, a]) => [
        profile,
        name,
        safe(a.argv.join(' ')),
        `${a.timeoutSec}s`,
        a.shell ? 'shell' : '',
      ]),
    );
    console.log(table(['PROFILE', 'ACTION', 'ARGV', 'TIMEOUT', ''], rows));
    return 0;
  },
};

/** Reads a policy file: a bare policy or a signed one; checks it against the schema and itself. */
function readPolicyFile(path: string): { policy: Policy; signature?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(resolve(path), 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code ? `cannot read ${path} (${code})` : `${path} is not JSON: ${(err as Error).message}`,
    );
  }
  const signed = parsed as { policy?: unknown; signature?: unknown };
  const policy = signed && typeof signed === 'object' && 'policy' in signed ? signed.policy : parsed;
  if (!Value.Check(Policy, policy)) {
    const first = [...Value.Errors(Policy, policy)][0];
    throw new UsageError(
      `${path}: the policy${first ? ` at ${first.path || '/'}: ${first.message}` : ' is malformed'}`,
    );
  }
  const problems = policyProblems(policy);
  if (problems.length > 0) throw new UsageError(`${path}: ${problems.join('; ')}`);
  return { policy, ...(typeof signed.signature === 'string' ? { signature: signed.signature } : {}) };
}

function rootKeyFile(values: Record<string, unknown>): string {
  return (
    (values.key as string | undefined) ??
    join(resolve((values['data-dir'] as string | undefined) ?? '.muster'), 'root.key')
  );
}

export const policySign: Command = {
  path: ['policy', 'sign'],
  args: 'FILE',
  summary: 'sign a policy with the fleet root key (works offline)',
  details:
    'FILE holds the policy JSON (CONTRACT section 5). The signed form {policy, signature} goes to\n' +
    'stdout or --out, ready for `muster policy push`.\n\nExample:\n  muster policy sign policy.json --key /media/offline/fleet-root.key --out policy.signed.json',
  settings: [
    KEY_SETTING,
    { flag: 'out', kind: 'string', value: 'FILE', help: 'write the signed policy here (default stdout)' },
    {
      flag: 'data-dir',
      env: 'MUSTER_DATA_DIR',
      kind: 'string',
      value: 'DIR',
      help: "the server's data dir (default ./.muster)",
    },
  ],
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one policy FILE');
    const { policy } = readPolicyFile(positionals[0]!);
    const { privateKey } = readPrivateKey(rootKeyFile(values));
    const signed: SignedPolicy = { policy, signature: signPolicy(policy, privateKey) };
    const text = `${JSON.stringify(signed, null, 2)}\n`;
    if (values.out) {
      await writeFileAtomic(resolve(values.out as string), text, 0o644);
      console.error(`signed policy version ${policy.version} written to ${values.out}`);
    } else process.stdout.write(text);
    return 0;
  },
};

export const policyPush: Command = {
  path: ['policy', 'push'],
  args: 'FILE',
  summary: 'send a signed policy to the control plane, which relays it to every agent',
  details:
    'The server and every agent take it only if the fleet root signed it and its version is\nhigher than the one in force.\n\nExample:\n  muster policy push policy.signed.json',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one signed policy FILE');
    const { policy, signature } = readPolicyFile(positionals[0]!);
    if (!signature)
      throw new UsageError(`${positionals[0]} is not signed; run: muster policy sign ${positionals[0]}`);
    await adminClient(values).call<SignedPolicy>('POST', '/v1/policy', { policy, signature });
    if (values.json) printJson({ version: policy.version });
    else console.log(`policy version ${policy.version} is in force; agents get it now`);
    return 0;
  },
};

export const policyEdit: Command = {
  path: ['policy', 'edit'],
  summary: 'edit the next policy version in $EDITOR, then sign it with the root key and push it',
  details:
    'Starts from the policy in force (or a small example), with the version raised and every\n' +
    'registered operator added. With --out the draft is only written there, for signing on an\n' +
    'offline machine with `muster policy sign`.\n\nExample:\n  EDITOR=nano muster policy edit',
  settings: [
    KEY_SETTING,
    {
      flag: 'out',
      kind: 'string',
      value: 'FILE',
      help: 'write the draft here instead of editing, signing and pushing it',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, env }) {
    const client = adminClient(values);
    const [state, { items: operators }] = await Promise.all([
      client.call<PolicyState>('GET', '/v1/policy'),
      client.call<{ items: OperatorView[] }>('GET', '/v1/operators'),
    ]);
    const draft = nextDraft(state.current?.policy, operators);
    const text = `${JSON.stringify(draft, null, 2)}\n`;
    if (values.out) {
      await writeFileAtomic(resolve(values.out as string), text, 0o644);
      console.log(`draft of policy version ${draft.version} written to ${values.out}`);
      return 0;
    }
    const { privateKey } = readPrivateKey(rootKeyFile(values));
    const dir = mkdtempSync(join(tmpdir(), 'muster-policy-'));
    try {
      const file = join(dir, 'policy.json');
      writeFileSync(file, text, { mode: 0o600 });
      const editor = env.VISUAL || env.EDITOR || 'vi';
      const done = spawnSync(editor, [file], { stdio: 'inherit', shell: false });
      if (done.error || done.status !== 0)
        throw new UsageError(`the editor "${editor}" failed; nothing was pushed`);
      const { policy } = readPolicyFile(file);
      if (JSON.stringify(policy) === JSON.stringify(state.current?.policy))
        throw new UsageError('the policy did not change; nothing was pushed');
      await client.call('POST', '/v1/policy', { policy, signature: signPolicy(policy, privateKey) });
      console.log(`policy version ${policy.version} signed and pushed; agents get it now`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  },
};

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
