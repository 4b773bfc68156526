import { UsageError } from '@muster/host';
import { type CommandAccepted, type CommandView, signCommand } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { defaultOperatorKey, readPrivateKey } from '../keys.js';
import { printJson, safe } from '../output.js';
import { MIN_PREFIX } from '../prefix.js';
import { operatorForKey } from '../signer.js';
import { approvalLine } from './approvals-text.js';

export const commandsApprove: Command = {
  path: ['commands', 'approve'],
  args: 'ID',
  summary: 'approve a command awaiting approval by signing it with your own operator key',
  details:
    'Dual control: a policy action with "approvals": N runs only once N distinct operators have\n' +
    'signed the same command. This reads the command, signs the very bytes its operator signed\n' +
    'with your key, and prints what you approved. The control plane cannot approve for you:\n' +
    'every node counts the signatures again against its own copy of the policy.\n' +
    'ID may be any unique prefix of the id (at least 4 characters).\n\n' +
    'Example:\n  muster commands ls\n  muster commands approve 3f2a9c1e',
  settings: [
    {
      flag: 'key',
      kind: 'string',
      value: 'FILE',
      help: 'your operator key (default ~/.config/muster/operator.key)',
    },
    {
      flag: 'operator',
      env: 'MUSTER_OPERATOR',
      kind: 'string',
      value: 'NAME',
      help: 'which operator signs, only needed when the key belongs to several (default: the one whose key it is)',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals, env }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one command ID');
    const id = positionals[0]!;
    if (id.length < MIN_PREFIX)
      throw new UsageError(`"${id}" is too short: give at least ${MIN_PREFIX} characters of the command id`);
    const keyFile = (values.key as string | undefined) ?? defaultOperatorKey(env);
    const { privateKey, publicKey } = readPrivateKey(keyFile);
    const client = adminClient(values);
    const operator = await operatorForKey(client, publicKey, keyFile, values.operator as string | undefined);
    const view = await client.call<CommandView>('GET', `/v1/commands/${encodeURIComponent(id)}`);
    if (!view.signed) throw new Error(`the server did not return command ${view.id} to sign`);
    const { command } = view.signed;
    const approved = await client.call<CommandAccepted>(
      'POST',
      `/v1/commands/${encodeURIComponent(view.id)}/approvals`,
      { operator, signature: signCommand(command, privateKey) },
    );
    if (values.json) {
      printJson(approved);
      return 0;
    }
    const args = Object.entries(command.args).map(([k, v]) => `${k}=${v}`);
    console.log(
      `approved command ${view.id} as ${safe(operator)}: ${safe([command.action, ...args].join(' '))} on ${approved.targets.length} node(s)`,
    );
    if (approved.approvals) console.log(approvalLine(approved.state, approved.approvals));
    return 0;
  },
};
