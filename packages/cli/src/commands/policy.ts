import { resolve } from 'node:path';
import { UsageError, writeFileAtomic } from '@muster/host';
import { type PolicyState, type SignedPolicy, signPolicy } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { readPrivateKey } from '../keys.js';
import { printJson, safe, table } from '../output.js';
import { KEY_SETTING, readPolicyFile, rootKeyFile } from './policy-file.js';

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

export { nextDraft, policyEdit } from './policy-edit.js';
