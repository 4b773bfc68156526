import type { SignedCheckpoint } from '@muster/proto/web';
import { toBase64 } from '@muster/proto/web';
import type { Names } from '../names.js';
import type { Verdict } from './ledger-verify.js';
import { Kind, Ref, When } from './ref.js';

export interface Entry {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
}

/** The latest signed checkpoint and whether its signature checks out here. */
export function CheckpointCard({
  checkpoint,
  signed,
  vkey,
  reload,
}: {
  checkpoint: SignedCheckpoint | undefined;
  signed: string | undefined;
  vkey: string | undefined;
  reload: () => void;
}) {
  return (
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
      <button type="button" class="quiet" onClick={reload}>
        Read the latest checkpoint again
      </button>
    </section>
  );
}

/** One ledger entry, with its inclusion check and the verdict once checked. */
export function EntryRow({
  e,
  names,
  verdict,
  verify,
}: {
  e: Entry;
  names: Names;
  verdict: Verdict | undefined;
  verify: (seq: number) => void;
}) {
  return (
    <li data-seq={e.seq}>
      <span class="seq">#{e.seq}</span> <When iso={e.ts} /> <Kind kind={e.kind} />{' '}
      <Ref names={names} of={e.subject} hint={typeof e.data.name === 'string' ? e.data.name : undefined} />{' '}
      <span class="muted">
        by <Ref names={names} of={e.actor} />
      </span>{' '}
      <button type="button" class="small" onClick={() => verify(e.seq)}>
        Check inclusion
      </button>
      {verdict && (
        <p class={verdict.ok ? 'verdict good' : 'verdict bad'} role="status">
          {verdict.text}
        </p>
      )}
    </li>
  );
}
