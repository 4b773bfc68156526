import { checkpointSignedBy, parseCheckpointNote, type SignedCheckpoint } from '@muster/proto/web';
import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import { type FleetModel, useModel } from '../model.js';
import { SECURITY_KINDS } from './attention.js';
import { CheckpointCard, type Entry, EntryRow } from './ledger-parts.js';
import { ed25519, inclusionVerdict, NoEd25519, sha256, type Verdict } from './ledger-verify.js';

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
      verdict = await inclusionVerdict(seq, cp);
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
      <CheckpointCard
        checkpoint={checkpoint}
        signed={signed}
        vkey={vkey}
        reload={() => void loadCheckpoint()}
      />
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
            <EntryRow key={e.seq} e={e} names={model.names} verdict={verdicts[e.seq]} verify={verify} />
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
