import { UsageError } from '@muster/host';
import type { CommandList, CommandView } from '@muster/proto';
import { ADMIN_SETTINGS, type AdminClient, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe, table } from '../output.js';
import { MIN_PREFIX } from '../prefix.js';
import { receiptOutput } from '../receipt-text.js';
import { approvalLine, signedCount } from './approvals-text.js';

export const commandsList: Command = {
  path: ['commands', 'ls'],
  summary: 'list recent commands with how many nodes are in each state',
  settings: [
    { flag: 'limit', kind: 'string', value: 'N', help: 'how many (default 50, at most 1000)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const limit = (values.limit as string | undefined) ?? '50';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)
      throw new UsageError(`--limit: "${limit}" is not a whole number from 1 to 1000`);
    const list = await adminClient(values).call<CommandList>('GET', `/v1/commands?limit=${limit}`);
    if (values.json) {
      printJson(list);
      return 0;
    }
    if (list.items.length === 0) {
      console.log('no commands yet: muster run --target … -- ACTION');
      return 0;
    }
    console.log(
      table(
        ['ID', 'CREATED', 'OPERATOR', 'ACTION', 'STATE', 'SIGNED', 'NODES'],
        list.items.map((c) => [
          c.id,
          c.createdAt,
          safe(c.operator),
          safe(c.action),
          c.state ?? 'issued',
          signedCount(c.approvals),
          Object.entries(c.summary)
            .map(([s, n]) => `${n} ${s}`)
            .join(', '),
        ]),
      ),
    );
    return 0;
  },
};

export const commandsShow: Command = {
  path: ['commands', 'show'],
  args: 'ID',
  summary: "show a command, each node's state and its signed receipt",
  details:
    'ID may be any unique prefix of the id (at least 4 characters), as `muster commands ls` shows it.\n' +
    "Each node's stdout and stderr are printed under their own captions.",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one command ID');
    const view = await showCommand(adminClient(values), positionals[0]!);
    if (values.json) {
      printJson(view);
      return 0;
    }
    const args = Object.entries(view.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    console.log(
      `command   ${view.id}\noperator  ${safe(view.operator)}\naction    ${safe(`${view.action} ${args}`.trim())}\n` +
        `issued    ${view.issuedAt}, expires ${view.expiresAt}\n` +
        (view.approvals ? `state     ${approvalLine(view.state, view.approvals)}\n` : ''),
    );
    console.log(
      table(
        ['NODE', 'STATE', 'EXIT', 'REASON'],
        (view.targets ?? []).map((t) => [
          safe(t.name),
          t.state,
          t.receipt?.exitCode === null || t.receipt === null ? '' : String(t.receipt.exitCode),
          safe(t.reason ?? ''),
        ]),
      ),
    );
    for (const t of view.targets ?? []) {
      if (!t.receipt) continue;
      const output = receiptOutput(t.receipt, '');
      if (output.length === 0) continue;
      console.log(
        `\n--- ${safe(t.name)} (receipt signed by the node; stdout sha256 ${t.receipt.outputSha256})\n${output.join('\n')}`,
      );
    }
    return 0;
  },
};

/**
 * A command by its id or a unique prefix of it (the server resolves prefixes). A prefix that
 * matches several commands is the user's to lengthen: a usage error naming the candidates.
 */
async function showCommand(client: AdminClient, id: string): Promise<CommandView> {
  if (id.length < MIN_PREFIX)
    throw new UsageError(`"${id}" is too short: give at least ${MIN_PREFIX} characters of the command id`);
  return await client.call<CommandView>('GET', `/v1/commands/${encodeURIComponent(id)}`);
}
