import { AGENT_SETTINGS, agentConfigFrom, writeRequestFile } from '@muster/agent';
import { UsageError } from '@muster/host';
import type { NodeRequestState } from '@muster/proto';
import type { Command } from '../command.js';
import { displayPath, printJson, safe } from '../output.js';

/** The agent flags a request file takes: who the host asks to be, and where its key lives. */
const ASKED = new Set(['data-dir', 'name', 'profile', 'label']);

export const agentRequest: Command = {
  path: ['agent', 'request'],
  summary: 'write an enrollment request file for a host with no route to the server (key stays here)',
  details:
    'For a host that cannot reach the control plane. The key is made here, kept in the data dir\n' +
    '(request.key, 0600), and never leaves the host: the file holds only its CSR, the name, the\n' +
    'profile and labels asked for, and the key fingerprint to compare. Then:\n' +
    '  1. carry FILE to the server host:   muster nodes sign FILE --out GRANT\n' +
    '  2. bring GRANT back and run:        muster agent --grant GRANT [--server URL] [--data-dir DIR]',
  settings: [
    { flag: 'out', kind: 'string', value: 'FILE', help: 'where to write the request (required)' },
    ...AGENT_SETTINGS.filter((s) => ASKED.has(s.flag)),
    { flag: 'json', kind: 'boolean', help: 'print JSON only' },
  ],
  async run({ values }) {
    const out = values.out as string | undefined;
    if (!out) throw new UsageError('--out FILE is required: where to write the request');
    const config = agentConfigFrom(values, undefined);
    const file = await writeRequestFile(config, out);
    const name = file.name ?? '(the host name)';
    if (values.json) {
      printJson({ name: file.name ?? null, fingerprint: file.fingerprint, out });
      return 0;
    }
    console.log(
      [
        `Wrote the enrollment request for ${safe(name)} to ${displayPath(out)}.`,
        `Key fingerprint (the key stays in ${displayPath(config.dataDir)}):`,
        `  ${file.fingerprint}`,
        'On the server host:  muster nodes sign FILE --out GRANT',
        `Then here:           muster agent --grant GRANT --data-dir ${displayPath(config.dataDir)}`,
      ].join('\n'),
    );
    return 0;
  },
};

/** What `muster agent --request` prints on the host once its request is queued. */
export function requestedText(state: NodeRequestState, server: URL): string {
  return [
    `Asked ${server.origin} to let this host in as ${safe(state.name)}. Its key fingerprint:`,
    `  ${state.fingerprint}`,
    'On the server, compare it with "muster nodes pending", then approve it with:',
    `  muster nodes approve ${safe(state.name)} --fingerprint ${state.fingerprint}`,
    `Waiting for approval; the request expires at ${state.expiresAt}.`,
  ].join('\n');
}
