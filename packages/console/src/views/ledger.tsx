import {
  checkpointSignedBy,
  fromBase64,
  leafHashWith,
  parseCheckpointNote,
  rootFromInclusionProofWith,
  type SignedCheckpoint,
  sameBytes,
  toBase64,
} from '@muster/proto/web';
import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import { type FleetModel, useModel } from '../model.js';
import { SECURITY_KINDS } from './attention.js';
import { Kind, Ref, When } from './ref.js';

interface Entry {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
}

const KINDS = [
  '',
  'node.enrolled',
  'node.renewed',
  'node.certificate_activated',
  'node.decommissioned',
  'node.rotation_requested',
  'node.replaced',
  'token.created',
  'token.revoked',
  ...SECURITY_KINDS,
];

const sha256 = async (data: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', data as BufferSource));

class NoEd25519 extends Error {}
const ed25519 = async (raw: Uint8Array, signature: Uint8Array, msg: Uint8Array) => {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey('raw', raw as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    throw new NoEd25519('this browser cannot check Ed25519 signatures');
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature as BufferSource, msg as BufferSource);
};

interface Verdict {
  ok: boolean;
  text: string;
}

/**
 * The ledger: the latest signed checkpoint, the entries by kind, and for any entry an inclusion
 * proof checked here, in the browser, against the checkpoint: the server is not trusted to say so.
 */
export function LedgerView({ model }: { model: FleetModel }) {
  useModel(model);
  const [vkey, setVkey] = useState<string | undefined>();
  const [checkpoint, setCheckpoint] = useState<SignedCheckpoint | undefined>();
  const [signed, setSigned] = useState<string | undefined>();
  const [kind, setKind] = useState('');
  const [entries, setEntries] = useState<Entry[] | undefined>();
  const [older, setOlder] = useState<number | null>(null);
  const [verdicts, setVerdicts] = useState<Record<number, Verdict>>({});
  const [error, setError] = useState<string | undefined>();

  const loadCheckpoint = async (key: string | undefined = vkey): Promise<SignedCheckpoint | undefined> => {
    const note = await api<string>('GET', '/v1/ledger/checkpoint');
    const cp = parseCheckpointNote(note);
    setCheckpoint(cp);
    if (cp && key) {
      try {
        setSigned((await checkpointSignedBy(sha256, ed25519, cp, key)) ? 'good' : 'bad');
      } catch (err) {
        setSigned(err instanceof NoEd25519 ? err.message : 'bad');
      }
    }
    return cp;
  };

  useEffect(() => {
    void (async () => {
      try {
        const key = await api<{ origin: string; vkey: string }>('GET', '/v1/ledger/key');
        setVkey(key.vkey);
        await loadCheckpoint(key.vkey);
      } catch (err) {
        setError(message(err));
      }
    })();
  }, []);

  const loadEntries = async (before?: number) => {
    try {
      const q = new URLSearchParams({ limit: '50' });
      if (kind) q.set('kind', kind);
      if (before !== undefined) q.set('before', String(before));
      const page = await api<{ items: Entry[]; nextBefore: number | null }>(
        'GET',
        `/v1/ledger/decisions?${q}`,
      );
      model.names.learnCommands(
        page.items.flatMap((e) =>
          e.kind === 'command.issued' && typeof e.data.action === 'string'
            ? [{ id: e.subject.slice('command:'.length), action: e.data.action }]
            : [],
        ),
      );
      setEntries((list) => (before === undefined ? page.items : [...(list ?? []), ...page.items]));
      setOlder(page.nextBefore);
    } catch (err) {
      setError(message(err));
    }
  };
  useEffect(() => {
    setEntries(undefined);
    void loadEntries();
  }, [kind]);

  const verify = async (seq: number) => {
    setVerdicts((v) => ({ ...v, [seq]: { ok: false, text: 'checking…' } }));
    let verdict: Verdict;
    try {
      let cp = checkpoint;
      if (!cp || seq >= cp.size) cp = await loadCheckpoint();
      if (!cp || seq >= cp.size)
        throw new Error('no checkpoint covers this entry yet; try again in a moment');
      const { entries: got } = await api<{ entries: Array<{ seq: number; entry: string }> }>(
        'GET',
        `/v1/ledger/entries?start=${seq}&end=${seq + 1}`,
      );
      const entry = got[0];
      if (!entry || entry.seq !== seq) throw new Error(`the server did not give entry ${seq}`);
      const proof = await api<{ hashes: string[] }>(
        'GET',
        `/v1/ledger/proof/inclusion?seq=${seq}&size=${cp.size}`,
      );
      const leaf = await leafHashWith(sha256, entry.entry);
      const root = await rootFromInclusionProofWith(sha256, seq, cp.size, leaf, proof.hashes.map(fromBase64));
      verdict =
        root && sameBytes(root, cp.root)
          ? {
              ok: true,
              text: `Included: its proof (${proof.hashes.length} hashes) leads to the root of the signed checkpoint at size ${cp.size}.`,
            }
          : {
              ok: false,
              text: `NOT included: the proof does not lead to the checkpoint's root ${toBase64(cp.root)}.`,
            };
    } catch (err) {
      verdict = { ok: false, text: message(err) };
    }
    setVerdicts((v) => ({ ...v, [seq]: verdict }));
  };

  return (
    <section aria-labelledby="ledger-title">
      <h1 id="ledger-title">Ledger</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <section class="card" aria-labelledby="cp-title">
        <h2 id="cp-title">Latest checkpoint</h2>
        {checkpoint ? (
          <dl class="facts">
            <dt>Origin</dt>
            <dd>{checkpoint.origin}</dd>
            <dt>Tree size</dt>
            <dd data-field="tree-size">{checkpoint.size}</dd>
            <dt>Root hash</dt>
            <dd>
              <code class="wrap">{toBase64(checkpoint.root)}</code>
            </dd>
            <dt>Signature</dt>
            <dd data-field="signature">
              {signed === 'good' ? (
                <>
                  checked here against <code class="wrap">{vkey}</code>
                </>
              ) : signed === 'bad' ? (
                'DOES NOT VERIFY against the ledger key'
              ) : (
                (signed ?? 'checking…')
              )}
            </dd>
          </dl>
        ) : (
          <p class="loading">Loading…</p>
        )}
        <button type="button" class="quiet" onClick={() => void loadCheckpoint()}>
          Read the latest checkpoint again
        </button>
      </section>
      <div class="toolbar">
        <h2>Entries</h2>
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k || 'every kind'}
              </option>
            ))}
          </select>
        </label>
      </div>
      {!entries ? (
        <p class="loading">Loading entries…</p>
      ) : entries.length === 0 ? (
        <p class="muted">No entries of this kind.</p>
      ) : (
        <ol class="entries">
          {entries.map((e) => (
            <li key={e.seq} data-seq={e.seq}>
              <span class="seq">#{e.seq}</span> <When iso={e.ts} /> <Kind kind={e.kind} />{' '}
              <Ref
                names={model.names}
                of={e.subject}
                hint={typeof e.data.name === 'string' ? e.data.name : undefined}
              />{' '}
              <span class="muted">
                by <Ref names={model.names} of={e.actor} />
              </span>{' '}
              <button type="button" class="small" onClick={() => verify(e.seq)}>
                Check inclusion
              </button>
              {verdicts[e.seq] && (
                <p class={verdicts[e.seq]!.ok ? 'verdict good' : 'verdict bad'} role="status">
                  {verdicts[e.seq]!.text}
                </p>
              )}
            </li>
          ))}
        </ol>
      )}
      {older !== null && entries && (
        <button type="button" class="quiet" onClick={() => loadEntries(older)}>
          Show older entries
        </button>
      )}
    </section>
  );
}
