import { readFile } from 'node:fs/promises';
import { CsrError, ServerError, UsageError, verifyCsr, writeFileAtomic } from '@muster/host';
import {
  FINGERPRINT_PATTERN,
  GRANT_FILE_KIND,
  type NodeRequestBody,
  type PendingRequestList,
  REQUEST_FILE_KIND,
  type RequestDecision,
  type SignedGrant,
  spkiFingerprint,
} from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { ago, displayPath, printJson, safe, table } from '../output.js';

export const nodesPending: Command = {
  path: ['nodes', 'pending'],
  summary: 'list hosts waiting to enroll without a token (muster agent --request)',
  details:
    'Compare each FINGERPRINT with what the host printed before approving it:\n' +
    '  muster nodes approve NAME --fingerprint sha256:…   or   muster nodes reject NAME',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<PendingRequestList>('GET', '/v1/enrollment/requests');
    if (values.json) {
      printJson(items);
      return 0;
    }
    if (items.length === 0) {
      console.log('No enrollment requests are waiting.');
      return 0;
    }
    console.log(
      table(
        ['NAME', 'FINGERPRINT', 'SOURCE', 'PROFILE', 'LABELS', 'ASKED', 'EXPIRES'],
        items.map((r) => [
          safe(r.name),
          r.fingerprint,
          safe(r.source),
          safe(r.profile ?? '-'),
          safe(
            Object.entries(r.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || '-',
          ),
          ago(r.requestedAt),
          within(r.expiresAt),
        ]),
      ),
    );
    return 0;
  },
};

export const nodesApprove: Command = {
  path: ['nodes', 'approve'],
  args: 'NAME',
  summary: "let a waiting host in, if --fingerprint is exactly its key's (as the host printed it)",
  settings: [
    {
      flag: 'fingerprint',
      kind: 'string',
      value: 'sha256:HEX',
      help: 'the key fingerprint the host printed; the request is approved only if it matches',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const name = oneName(positionals);
    const fingerprint = values.fingerprint as string | undefined;
    if (!fingerprint) throw new UsageError('--fingerprint sha256:HEX is required: the one the host printed');
    if (!FINGERPRINT_PATTERN.test(fingerprint))
      throw new UsageError(
        `--fingerprint: "${safe(fingerprint)}" is not sha256: and 64 lowercase hex digits`,
      );
    let decided: RequestDecision;
    try {
      decided = await adminClient(values).call<RequestDecision>(
        'POST',
        `/v1/enrollment/requests/${encodeURIComponent(name)}/approve`,
        { fingerprint },
      );
    } catch (err) {
      // A fingerprint that is not the request's is the operator's input refused: a usage error.
      if (err instanceof ServerError && err.problem?.code === 'fingerprint_mismatch')
        throw new UsageError(err.message);
      throw err;
    }
    if (values.json) {
      printJson(decided);
      return 0;
    }
    console.log(
      `Approved ${safe(name)} (${decided.fingerprint}) as node ${decided.nodeId}; its agent takes up the certificate at its next poll.`,
    );
    return 0;
  },
};

export const nodesReject: Command = {
  path: ['nodes', 'reject'],
  args: 'NAME',
  summary: "refuse a waiting host's enrollment request; its agent stops with a message",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const name = oneName(positionals);
    const decided = await adminClient(values).call<RequestDecision>(
      'POST',
      `/v1/enrollment/requests/${encodeURIComponent(name)}/reject`,
    );
    if (values.json) {
      printJson(decided);
      return 0;
    }
    console.log(`Rejected the enrollment request for ${safe(name)} (${decided.fingerprint}).`);
    return 0;
  },
};

export const nodesSign: Command = {
  path: ['nodes', 'sign'],
  args: 'FILE',
  summary: 'sign a request file (muster agent request --out) into a grant for a host with no route',
  details:
    'Run where the admin API is reachable; the certificate is issued at once (a ledger decision\n' +
    'in your name). Carry GRANT back to the host: muster agent --grant GRANT. A key is signed once.',
  settings: [
    { flag: 'out', kind: 'string', value: 'GRANT', help: 'where to write the grant (required)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const [file, extra] = positionals;
    if (!file || extra !== undefined) throw new UsageError('expected exactly one FILE: the request file');
    const out = values.out as string | undefined;
    if (!out) throw new UsageError('--out GRANT is required: where to write the grant');
    const body = await readRequestFile(file);
    const signed = await adminClient(values).call<SignedGrant>('POST', '/v1/enrollment/grants', body);
    const grant = {
      kind: GRANT_FILE_KIND,
      server: signed.server,
      fingerprint: signed.fingerprint,
      enrolled: signed.enrolled,
    };
    await writeFileAtomic(out, `${JSON.stringify(grant, null, 2)}\n`, 0o644);
    if (values.json) {
      printJson({
        name: signed.enrolled.name,
        nodeId: signed.enrolled.nodeId,
        fingerprint: signed.fingerprint,
        out,
      });
      return 0;
    }
    console.log(
      [
        `Signed node ${safe(signed.enrolled.name)} (${signed.enrolled.nodeId}) for the key`,
        `  ${signed.fingerprint}`,
        `Grant written to ${displayPath(out)}. On the host: muster agent --grant GRANT`,
      ].join('\n'),
    );
    return 0;
  },
};

/** A request file, checked here: its fingerprint must be its CSR's, or it was altered on the way. */
async function readRequestFile(file: string): Promise<NodeRequestBody> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code ? `cannot read ${file} (${code})` : `${file} is not JSON: not a request file`);
  }
  if (parsed?.kind !== REQUEST_FILE_KIND || typeof parsed.csr !== 'string')
    throw new UsageError(`${file} is not a request file (muster agent request --out FILE writes one)`);
  let fingerprint: string;
  try {
    fingerprint = spkiFingerprint(verifyCsr(parsed.csr).spki);
  } catch (err) {
    if (err instanceof CsrError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
  if (fingerprint !== parsed.fingerprint)
    throw new UsageError(
      `${file}: its fingerprint is not its CSR's key (${fingerprint}): the file was altered`,
    );
  const { kind: _kind, fingerprint: _fp, ...body } = parsed;
  return body as NodeRequestBody;
}

function oneName(positionals: string[]): string {
  const [name, extra] = positionals;
  if (!name || extra !== undefined)
    throw new UsageError('expected exactly one NAME: the name the host asked for');
  return name;
}

/** `in 42 min`, or `now` once past. */
function within(iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  if (s <= 0) return 'now';
  if (s < 120) return `in ${s} s`;
  if (s < 7200) return `in ${Math.round(s / 60)} min`;
  return `in ${Math.round(s / 3600)} h`;
}
