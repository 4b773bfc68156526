import { join, resolve } from 'node:path';
import { keyFingerprint } from '@muster/proto';
import type { Command } from '../command.js';
import { makeKeyFile } from '../keys.js';
import { printJson } from '../output.js';

export const rootInit: Command = {
  path: ['root', 'init'],
  summary: 'make the fleet root key that signs command policies (can run offline)',
  details:
    'Writes the private key (mode 0600) and FILE.pub beside it. Agents pin the root by its\n' +
    'fingerprint, which join lines carry as --root-pin. Without --out the key goes into the\n' +
    "server's data dir (root.key, root.pub), where `muster server` finds it: fine for a trial.\n" +
    'In production make it on a machine that stays offline and start the server with\n' +
    '--fleet-root FILE.pub.\n\nExample:\n  muster root init --out /media/offline/fleet-root.key',
  settings: [
    {
      flag: 'out',
      kind: 'string',
      value: 'FILE',
      help: 'where to write the private key (default <data-dir>/root.key)',
    },
    {
      flag: 'data-dir',
      env: 'MUSTER_DATA_DIR',
      kind: 'string',
      value: 'DIR',
      help: "the server's data dir (default ./.muster)",
    },
    { flag: 'json', kind: 'boolean', help: 'print JSON only' },
  ],
  async run({ values }) {
    const dataDir = resolve((values['data-dir'] as string | undefined) ?? '.muster');
    const out = values.out ? resolve(values.out as string) : join(dataDir, 'root.key');
    // The data dir's root.pub is what the server reads; elsewhere FILE.pub sits beside the key.
    const pub = values.out ? `${out}.pub` : join(dataDir, 'root.pub');
    const publicKey = await makeKeyFile(out, pub);
    const fingerprint = keyFingerprint(publicKey);
    if (values.json) {
      printJson({ privateKeyFile: out, publicKeyFile: pub, publicKey, fingerprint });
      return 0;
    }
    process.stdout.write(
      `Fleet root key written to ${out} (keep it secret, ideally offline).\n` +
        `Public key: ${publicKey}\nFingerprint (the --root-pin of join lines): ${fingerprint}\n` +
        (values.out
          ? `Start the server with --fleet-root ${pub}; `
          : 'The server in this data dir uses it; ') +
        `sign policies with: muster policy sign FILE --key ${out}\n`,
    );
    return 0;
  },
};
