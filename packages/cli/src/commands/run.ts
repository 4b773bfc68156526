import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '@muster/host';
import {
  ARG_NAME_PATTERN,
  type CommandAccepted,
  type CommandTarget,
  type CommandView,
  FINAL_TARGET_STATES,
  parseDuration,
  parseLabels,
  type Command as SignedCommandBody,
  signCommand,
} from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { defaultOperatorKey, readPrivateKey } from '../keys.js';
import { printJson, safe } from '../output.js';
import { receiptOutput } from '../receipt-text.js';
import { operatorForKey } from '../signer.js';
import { approvalLine } from './approvals-text.js';

/** `all`, `profile:web`, `env=prod,role=db` (labels), or node names and ids separated by commas. */
export function parseTarget(selector: string): CommandTarget {
  if (selector === 'all') return { all: true };
  if (selector.startsWith('profile:')) return { profile: selector.slice('profile:'.length) };
  const text = selector.startsWith('label:') ? selector.slice('label:'.length) : selector;
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new UsageError('--target is empty');
  if (parts.every((p) => p.includes('='))) {
    try {
      return { labels: parseLabels(parts) };
    } catch (err) {
      throw new UsageError(`--target: ${(err as Error).message}`);
    }
  }
  if (parts.some((p) => p.includes('='))) throw new UsageError('--target mixes labels and node names');
  return { nodes: parts };
}

/** `name=value` pairs after the action. */
export function parseArgs(words: readonly string[]): Record<string, string> {
  const args: Record<string, string> = {};
  const re = new RegExp(ARG_NAME_PATTERN);
  for (const word of words) {
    const eq = word.indexOf('=');
    const name = word.slice(0, eq);
    if (eq <= 0 || !re.test(name)) throw new UsageError(`argument "${word}" is not of the form name=value`);
    if (Object.hasOwn(args, name)) throw new UsageError(`argument ${name} is given twice`);
    args[name] = word.slice(eq + 1);
  }
  return args;
}

/** How much of each node's output `--wait` prints; `muster commands show` prints all that was kept. */
const OUTPUT_TAIL_LINES = 10;

export const runCommand: Command = {
  path: ['run'],
  args: '--target SELECTOR -- ACTION [NAME=VALUE…]',
  summary: 'sign a command with your operator key and send it to the nodes it targets',
  details:
    'The command is signed here; the control plane relays it and cannot alter it; every node\n' +
    'checks the signature and the policy again. The key says which operator signs: the one the\n' +
    'policy lists with its public key (--operator only when the key belongs to several).\n' +
    'Targets: node names or ids (web-1,web-2), labels (env=prod,role=db), profile:NAME, or all.\n' +
    'Arguments are named: NAME=VALUE. An action whose policy entry says "approvals": N waits as\n' +
    'awaiting_approval until N-1 other operators run `muster commands approve ID`.\n' +
    'With --wait it shows the approvals and each node as it goes, with the last\n' +
    `${OUTPUT_TAIL_LINES} lines of its stdout and stderr, and exits 0 only if every node succeeded.\n\n` +
    'Example:\n  muster run --target profile:web --wait -- restart-service service=nginx',
  settings: [
    {
      flag: 'target',
      kind: 'string',
      value: 'SELECTOR',
      help: 'which nodes: names/ids, k=v labels, profile:NAME or all',
    },
    {
      flag: 'timeout',
      kind: 'string',
      value: 'DURATION',
      help: 'how long the command stays valid for delivery (default 60s)',
    },
    {
      flag: 'wait',
      kind: 'boolean',
      help: 'follow every node to its receipt and exit 0 only if all succeeded',
    },
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
  async run({ values, positionals, env, signal }) {
    if (!values.target)
      throw new UsageError('--target is required (node names, k=v labels, profile:NAME or all)');
    const [action, ...rest] = positionals;
    if (!action) throw new UsageError('name the action after --, e.g. muster run --target web-1 -- uptime');
    const lifetime = parseDuration((values.timeout as string | undefined) ?? '60s');
    if (lifetime === undefined || lifetime < 1000 || lifetime > 86_400_000)
      throw new UsageError(`--timeout: "${values.timeout}" is not a duration between 1s and 24h`);
    const keyFile = (values.key as string | undefined) ?? defaultOperatorKey(env);
    const { privateKey, publicKey } = readPrivateKey(keyFile);
    const target = parseTarget(values.target as string);
    const args = parseArgs(rest);
    const client = adminClient(values);
    const operator = await operatorForKey(client, publicKey, keyFile, values.operator as string | undefined);
    const now = Date.now();
    const command: SignedCommandBody = {
      v: 1,
      id: randomUUID(),
      nonce: randomBytes(18).toString('base64url'),
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + lifetime).toISOString(),
      operator,
      target,
      action,
      args,
    };
    const accepted = await client.call<CommandAccepted>('POST', '/v1/commands', {
      command,
      signature: signCommand(command, privateKey),
    });
    const awaiting = accepted.state === 'awaiting_approval';
    if (!values.wait) {
      if (values.json) printJson(accepted);
      else if (awaiting) console.log(awaitingText(accepted));
      else
        console.log(
          `command ${accepted.id} sent to ${accepted.targets.length} node(s): ${accepted.targets.map((t) => safe(t.name)).join(', ')}\n` +
            `follow it with: muster commands show ${accepted.id}`,
        );
      return 0;
    }
    if (!values.json)
      console.log(
        awaiting
          ? awaitingText(accepted)
          : `command ${accepted.id} sent to ${accepted.targets.length} node(s)`,
      );
    const final = await follow(client, accepted.id, !values.json, signal);
    if (values.json) printJson(final);
    else console.log(summary(final));
    const all = final.targets ?? [];
    return all.length > 0 && all.every((t) => t.state === 'succeeded') ? 0 : 1;
  },
};

/** Polls the command until every node has an answer, printing each node's changes. */
async function follow(
  client: ReturnType<typeof adminClient>,
  id: string,
  print: boolean,
  signal: AbortSignal,
): Promise<CommandView> {
  const seen = new Map<string, string>();
  let signers = -1;
  for (;;) {
    const view = await client.call<CommandView>('GET', `/v1/commands/${encodeURIComponent(id)}`);
    // While it waits for approvals, each new signature is news too.
    if (print && view.approvals && view.state !== 'issued' && view.approvals.signers.length !== signers) {
      signers = view.approvals.signers.length;
      console.log(`  ${approvalLine(view.state, view.approvals)}`);
    }
    for (const t of view.targets ?? []) {
      if (seen.get(t.nodeId) === t.state) continue;
      seen.set(t.nodeId, t.state);
      if (!print) continue;
      console.log(`  ${safe(t.name).padEnd(24)} ${t.state}${detail(t)}`);
      // The answer's output as it arrives, so a run reads like the commands it ran.
      if (t.receipt) {
        const output = receiptOutput(t.receipt, '    ', OUTPUT_TAIL_LINES);
        if (output.length > 0) console.log(output.join('\n'));
      }
    }
    if ((view.targets ?? []).every((t) => FINAL_TARGET_STATES.includes(t.state)) || signal.aborted)
      return view;
    await sleep(250, undefined, { signal }).catch(() => {});
  }
}

function awaitingText(accepted: CommandAccepted): string {
  return (
    `command ${accepted.id} for ${accepted.targets.length} node(s) is ${approvalLine(accepted.state, accepted.approvals!)}\n` +
    `another operator approves it with: muster commands approve ${accepted.id}`
  );
}

function detail(t: NonNullable<CommandView['targets']>[number]): string {
  const exit = t.receipt?.exitCode;
  const parts = [
    exit !== null && exit !== undefined ? `exit ${exit}` : '',
    t.reason ? safe(t.reason) : '',
  ].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function summary(view: CommandView): string {
  const counts = Object.entries(view.summary)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  return `${(view.targets ?? []).length} node(s): ${counts}`;
}
