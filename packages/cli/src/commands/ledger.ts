import { createWriteStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError } from '@muster/host';
import {
  type Checkpoint,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  type Verifier,
  type VerifyResult,
  verifyExport,
  verifyInclusion,
} from '@muster/proto';
import { ADMIN_SETTINGS, type AdminClient, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { checkKinds, DECISION_KINDS } from '../kinds.js';
import { printJson, safe, table } from '../output.js';

interface KeyInfo {
  origin: string;
  vkey: string;
}
interface EntriesPage {
  size: number;
  entries: Array<{ seq: number; entry: string; leafHash: string }>;
}

const KEY_SETTING = {
  flag: 'key',
  kind: 'string',
  value: 'VKEY',
  help: 'the ledger public key to trust (name+id+base64, as muster ledger key prints it); pin it to verify offline',
} as const;

/** A `--key` as given: a usage mistake unless it reads as a ledger key, before anything is compared with it. */
function pinnedKey(values: Record<string, unknown>): string | undefined {
  const text = values.key as string | undefined;
  if (text === undefined) return undefined;
  try {
    parseVerifierKey(text);
  } catch (err) {
    throw new UsageError(
      `--key: "${text}" is not a ledger key (${(err as Error).message}); muster ledger key prints the one to pin`,
    );
  }
  return text.trim();
}

/** Fetches the ledger key, and refuses a server whose key differs from a pinned one. */
async function verifierFor(client: AdminClient, pinned: string | undefined): Promise<Verifier> {
  const key = await client.call<KeyInfo>('GET', '/v1/ledger/key');
  if (pinned !== undefined && pinned.trim() !== key.vkey) {
    throw new Error(
      `the server signs with a different ledger key (${key.vkey}) than the one given with --key`,
    );
  }
  return parseVerifierKey(pinned ?? key.vkey);
}

async function fetchCheckpoint(
  client: AdminClient,
  verifier: Verifier,
): Promise<{ note: string; checkpoint: Checkpoint }> {
  const note = await client.call<string>('GET', '/v1/ledger/checkpoint');
  return { note, checkpoint: openCheckpoint(note, verifier) };
}

export const ledgerCheckpoint: Command = {
  path: ['ledger', 'checkpoint'],
  summary: "print the ledger's latest signed checkpoint, after checking its signature",
  details:
    'The note goes to stdout as signed; stderr says which key its signature was checked with.\n' +
    'A checkpoint whose signature does not verify is not printed, and the exit status is 1.\n' +
    'Pin the key (muster ledger key) with --key so that the check does not trust the server.',
  settings: [KEY_SETTING, ...ADMIN_SETTINGS],
  async run({ values }) {
    const pinned = pinnedKey(values);
    const client = adminClient(values);
    const verifier = await verifierFor(client, pinned);
    const note = await client.call<string>('GET', '/v1/ledger/checkpoint');
    let checkpoint: Checkpoint;
    try {
      checkpoint = openCheckpoint(note, verifier);
    } catch (err) {
      throw new Error(`the checkpoint's signature does not verify: ${(err as Error).message}`);
    }
    if (values.json) {
      printJson({
        origin: checkpoint.origin,
        size: checkpoint.size,
        root: checkpoint.root.toString('base64'),
        note,
        verified: true,
      });
      return 0;
    }
    process.stdout.write(note);
    console.error(
      pinned
        ? `signature verified with the pinned ledger key ${verifier.name}+${verifier.keyId.toString('hex')}`
        : `signature verified with the key the server gave (${verifier.name}+${verifier.keyId.toString('hex')}); pin it with --key to check against a key you hold`,
    );
    return 0;
  },
};

export const ledgerKey: Command = {
  path: ['ledger', 'key'],
  summary: "print the ledger's public key, to pin with --key in ledger verify, checkpoint and proof",
  details:
    'Prints the verifier key (name+id+base64) that signs checkpoints; --json prints {origin, vkey}.\n' +
    'Keep it somewhere the server cannot change it.\n\nExample:\n' +
    '  muster ledger key > ledger.vkey\n  muster ledger verify --export ledger.jsonl --key "$(cat ledger.vkey)"',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const key = await adminClient(values).call<KeyInfo>('GET', '/v1/ledger/key');
    if (values.json) printJson({ origin: key.origin, vkey: key.vkey });
    else console.log(safe(key.vkey));
    return 0;
  },
};

export const ledgerProof: Command = {
  path: ['ledger', 'proof'],
  args: 'SEQ',
  summary: 'prove that entry SEQ is in the ledger: fetch it with its inclusion proof and check both here',
  settings: [KEY_SETTING, ...ADMIN_SETTINGS],
  async run({ values, positionals }) {
    const [seqText, extra] = positionals;
    if (!seqText || extra !== undefined || !/^\d+$/.test(seqText))
      throw new UsageError('expected one SEQ, a whole number');
    const seq = Number(seqText);
    const pinned = pinnedKey(values);
    const client = adminClient(values);
    const { checkpoint } = await fetchCheckpoint(client, await verifierFor(client, pinned));
    if (seq >= checkpoint.size)
      throw new Error(`entry ${seq} is not in the ledger yet (it has ${checkpoint.size} entries)`);
    const page = await client.call<EntriesPage>('GET', `/v1/ledger/entries?start=${seq}&end=${seq + 1}`);
    const proof = await client.call<{ hashes: string[] }>(
      'GET',
      `/v1/ledger/proof/inclusion?seq=${seq}&size=${checkpoint.size}`,
    );
    const entry = page.entries[0]!.entry;
    const ok = verifyInclusion(
      seq,
      checkpoint.size,
      leafHash(entry),
      proof.hashes.map((h) => Buffer.from(h, 'base64')),
      checkpoint.root,
    );
    if (values.json) {
      printJson({
        seq,
        size: checkpoint.size,
        root: checkpoint.root.toString('base64'),
        entry: JSON.parse(entry),
        proof: proof.hashes,
        verified: ok,
      });
    } else {
      console.log(entry);
      console.log(
        ok
          ? `verified: entry ${seq} is in the ledger of ${checkpoint.size} entries signed by ${checkpoint.origin}`
          : `NOT VERIFIED: the inclusion proof for entry ${seq} does not lead to the signed root`,
      );
    }
    return ok ? 0 : 1;
  },
};

export const ledgerExport: Command = {
  path: ['ledger', 'export'],
  summary:
    'write the ledger as JSON lines: a header with the key and a signed checkpoint, then every entry as hashed',
  settings: [
    { flag: 'out', kind: 'string', value: 'FILE', help: 'write to FILE instead of standard output' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const lines = await exportLines(adminClient(values));
    const out: NodeJS.WritableStream = values.out
      ? createWriteStream(values.out as string, { mode: 0o644 })
      : process.stdout;
    for (const line of lines) {
      if (!out.write(`${line}\n`)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    if (values.out) {
      await new Promise<void>((resolve) => out.end(() => resolve()));
      console.error(`wrote ${lines.length - 1} entries and a signed checkpoint to ${values.out}`);
    }
    return 0;
  },
};

export const ledgerVerify: Command = {
  path: ['ledger', 'verify'],
  summary: 'recompute the ledger from an export (offline) or from the server, and name the first bad entry',
  details:
    'Offline: muster ledger verify --export FILE --key VKEY needs nothing else: it checks the\n' +
    "checkpoint's signature, recomputes the tree and every entry's hash. Without --export it\n" +
    'fetches an export from the server first. Exit status 1 when anything does not verify.',
  settings: [
    { flag: 'export', kind: 'string', value: 'FILE', help: 'verify this export instead of fetching one' },
    KEY_SETTING,
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const key = pinnedKey(values);
    let result: VerifyResult;
    if (values.export) {
      const rl = createInterface({
        input: await openExport(values.export as string),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      result = await verifyExport(rl, key);
    } else {
      const client = adminClient(values);
      await verifierFor(client, key); // refuses a server whose key differs from a pinned one
      const lines = await exportLines(client);
      result = await verifyExport(
        (async function* () {
          yield* lines;
        })(),
        key,
      );
    }
    if (key === undefined && values.export) {
      console.error(
        'note: no --key given; trusting the key inside the export. Pin it with --key for a real check.',
      );
    }
    if (values.json) printJson(result);
    else if (result.ok)
      console.log(`verified: ${result.size} entries, consistent with the signed checkpoint`);
    else
      console.log(
        `NOT VERIFIED${result.firstBadSeq !== undefined ? ` at seq ${result.firstBadSeq}` : ''}: ${result.reason}`,
      );
    return result.ok ? 0 : 1;
  },
};

/** The export file as a stream, or one sentence naming it when it cannot be read. */
async function openExport(path: string): Promise<NodeJS.ReadableStream> {
  const file = resolve(path);
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new Error(`cannot read the export ${file}: it is not a file`);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code.toLowerCase();
    throw new Error(`cannot read the export ${file}: ${why}`);
  }
  return handle.createReadStream();
}

/**
 * An export: a header line with the key, a signed checkpoint and the stored leaf hashes (the
 * signed root authenticates them, and they let `verify` name the first entry that was changed),
 * then every entry up to the checkpoint, byte for byte as hashed.
 */
async function exportLines(client: AdminClient): Promise<string[]> {
  const key = await client.call<KeyInfo>('GET', '/v1/ledger/key');
  const note = await client.call<string>('GET', '/v1/ledger/checkpoint');
  const size = openCheckpoint(note, parseVerifierKey(key.vkey)).size;
  const lines: string[] = [];
  const leaves: Buffer[] = [];
  for (let start = 0; start < size; ) {
    const page = await client.call<EntriesPage>('GET', `/v1/ledger/entries?start=${start}&end=${size}`);
    if (page.entries.length === 0) break;
    for (const e of page.entries) {
      lines.push(e.entry);
      leaves.push(Buffer.from(e.leafHash, 'base64'));
    }
    start += page.entries.length;
    if (process.stderr.isTTY) process.stderr.write(`\rexporting ${start}/${size}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return [
    JSON.stringify({
      vkey: key.vkey,
      checkpoint: note,
      leafHashes: Buffer.concat(leaves).toString('base64'),
    }),
    ...lines,
  ];
}

export const ledgerList: Command = {
  path: ['ledger', 'ls'],
  summary: 'list decisions from the ledger, newest first, by kind and subject',
  details:
    'Example:\n  muster ledger ls --kind node.decommissioned\n  muster ledger ls --subject node:<id>\n  muster ledger ls --actor user:alice',
  settings: [
    {
      flag: 'kind',
      kind: 'string',
      value: 'KIND',
      help: 'only this kind, e.g. node.enrolled or token.revoked',
    },
    {
      flag: 'subject',
      kind: 'string',
      value: 'SUBJECT',
      help: 'only about this subject, e.g. node:<id> or token:<id>',
    },
    {
      flag: 'actor',
      kind: 'string',
      value: 'ACTOR',
      help: 'only decided by this principal: user:<name>, node:<id> or system',
    },
    { flag: 'limit', kind: 'string', value: 'N', help: 'at most N decisions (default 50, at most 1000)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const limit = (values.limit as string | undefined) ?? '50';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) {
      throw new UsageError(`--limit: "${limit}" is not a whole number from 1 to 1000`);
    }
    const query = new URLSearchParams({ limit });
    if (values.kind) query.set('kind', values.kind as string);
    if (values.subject) query.set('subject', values.subject as string);
    if (values.actor !== undefined) {
      if (!/^(user|node):[A-Za-z0-9._-]{1,128}$|^system$/.test(values.actor as string))
        throw new UsageError(`--actor: "${values.actor}" is not user:<name>, node:<id> or system`);
      query.set('actor', values.actor as string);
    }
    const client = adminClient(values);
    if (values.kind)
      await checkKinds('--kind', [values.kind as string], DECISION_KINDS, async (kind) => {
        const page = await client.call<{ items: LedgerLine[] }>(
          'GET',
          `/v1/ledger/decisions?${new URLSearchParams({ kind, limit: '1' })}`,
        );
        return page.items.length > 0;
      });
    const { items } = await client.call<{ items: Array<LedgerLine> }>('GET', `/v1/ledger/decisions?${query}`);
    if (values.json) {
      printJson(items);
      return 0;
    }
    if (items.length === 0) {
      console.log('No decisions match.');
      return 0;
    }
    console.log(
      table(
        ['SEQ', 'TIME', 'KIND', 'ACTOR', 'SUBJECT'],
        items.map((e) => [String(e.seq), e.ts, safe(e.kind), safe(e.actor), safe(e.subject)]),
      ),
    );
    return 0;
  },
};

interface LedgerLine {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  subject: string;
}
