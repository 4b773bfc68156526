import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type ChannelDown,
  commandSignatureValid,
  signaturesOf,
  signReceipt,
  type UnsignedReceipt,
} from '@muster/proto';
import WebSocket from 'ws';

/**
 * One process of simulated agents for `bench fanout`: each holds a channel; a command coming
 * down is checked against the operator's key as a real agent does, then answered with a receipt
 * signed by the node's own key (the built-in no-op action runs nothing). Prints {opened}.
 */
const [file, url, ca, operatorKey] = process.argv.slice(2) as [string, string, string, string];
const identities = JSON.parse(readFileSync(file, 'utf8')) as Array<{
  keyPem: string;
  certPem: string;
  nodeId: string;
}>;
const caPem = readFileSync(ca, 'utf8');
const EMPTY = createHash('sha256').digest('hex');
let opened = 0;

function open(identity: { keyPem: string; certPem: string; nodeId: string }): Promise<void> {
  const key: KeyObject = createPrivateKey(identity.keyPem);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      key: identity.keyPem,
      cert: identity.certPem,
      ca: caPem,
      perMessageDeflate: false,
    });
    ws.once('open', () => {
      opened++;
      resolve();
    });
    ws.once('error', reject);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as ChannelDown;
      if (m.type !== 'command') return;
      const { command } = m.signed;
      const [first] = signaturesOf(m.signed);
      const at = new Date().toISOString();
      const ok = first !== undefined && commandSignatureValid(command, first.signature, operatorKey);
      const receipt: UnsignedReceipt = {
        commandId: command.id,
        nodeId: identity.nodeId,
        status: ok ? 'succeeded' : 'rejected',
        ...(ok ? {} : { reason: 'bad signature' }),
        exitCode: ok ? 0 : null,
        startedAt: at,
        finishedAt: at,
        stdoutTail: '',
        stderrTail: '',
        outputSha256: EMPTY,
      };
      ws.send(
        JSON.stringify({ type: 'receipt', receipt: { ...receipt, signature: signReceipt(receipt, key) } }),
      );
    });
  });
}

let next = 0;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next < identities.length) {
      try {
        await open(identities[next++]!);
      } catch {
        // counted by what opened
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify({ opened })}\n`);
process.on('SIGTERM', () => process.exit(0));
