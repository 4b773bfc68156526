import type { CommandList, CommandView, TargetState } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import { time } from '../format.js';
import type { FleetModel } from '../model.js';

/** How a command's state on a node reads as a pill: the colours of node status, by meaning. */
const PILL: Record<TargetState, string> = {
  awaiting_approval: 'attention',
  pending: 'offline',
  delivered: 'attention',
  running: 'attention',
  succeeded: 'ok',
  failed: 'critical',
  timed_out: 'critical',
  rejected: 'critical',
  interrupted: 'critical',
  expired: 'offline',
};

/** Reloads on every command event, at most once per animation frame. */
function useCommandEvents(model: FleetModel, reload: () => void): void {
  useEffect(() => {
    let queued = false;
    return model.onEachEvent((e) => {
      if (!e.kind.startsWith('command.') || queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        reload();
      });
    });
  }, [model]);
}

function summary(c: CommandView): string {
  return Object.entries(c.summary)
    .map(([state, n]) => `${n} ${state.replaceAll('_', ' ')}`)
    .join(', ');
}

/** `awaiting approval: 1 of 2 signatures` while it waits; who signed is listed beside it. */
function approvalState(c: CommandView): string | undefined {
  if (!c.approvals || (c.approvals.required <= 1 && c.approvals.signers.length <= 1)) return undefined;
  const count = `${c.approvals.signers.length} of ${c.approvals.required} signatures`;
  if (c.state === 'awaiting_approval') return `awaiting approval: ${count}`;
  if (c.state === 'expired') return `expired awaiting approval: ${count}`;
  return `approved: ${count}`;
}

function signer(s: NonNullable<CommandView['approvals']>['signers'][number]): string {
  return s.user && s.user !== s.operator ? `${s.operator} (user ${s.user})` : s.operator;
}

function args(c: CommandView): string {
  return Object.entries(c.args)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/**
 * Signed commands, newest first, with how many nodes are in each state. Issuing stays in the
 * CLI, where the operator's key lives; the console shows what happened, live.
 */
export function CommandsView({ model }: { model: FleetModel }) {
  const [list, setList] = useState<CommandView[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const load = () =>
    api<CommandList>('GET', '/v1/commands?limit=100')
      .then((r) => {
        model.names.learnCommands(r.items);
        setList(r.items);
      })
      .catch((err) => setError(message(err)));
  useEffect(() => {
    void load();
  }, []);
  useCommandEvents(model, () => void load());
  return (
    <section aria-labelledby="commands-title">
      <h1 id="commands-title">Commands</h1>
      <p class="muted">
        Operators sign commands with their own key: <code>muster run --target … -- ACTION</code>. Every node
        checks the signature and the policy again and answers with a receipt signed by its own key. An action
        that needs approvals waits until other operators sign it too: <code>muster commands approve ID</code>.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!list && !error && <p class="loading">Loading commands…</p>}
      {list?.length === 0 && <p class="muted">No commands yet.</p>}
      {list && list.length > 0 && (
        <div class="scroll-x">
          <table class="commands">
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Operator</th>
                <th scope="col">Action</th>
                <th scope="col">Nodes</th>
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <tr key={c.id} data-command={c.id}>
                  <td>
                    <a href={`/commands/${encodeURIComponent(c.id)}`}>{time(c.createdAt)}</a>
                  </td>
                  <td>{c.operator}</td>
                  <td>
                    <code>{`${c.action} ${args(c)}`.trim()}</code>
                  </td>
                  <td>
                    {approvalState(c) && (
                      <>
                        <span
                          class={`pill pill-${c.state === 'issued' ? 'ok' : 'attention'}`}
                          data-field="approvals"
                        >
                          {approvalState(c)}
                        </span>{' '}
                      </>
                    )}
                    {summary(c)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** One command: what the operator signed, and each node's state, reason, exit code and output. */
export function CommandDetail({ model, id }: { model: FleetModel; id: string }) {
  const [view, setView] = useState<CommandView | undefined>();
  const [error, setError] = useState<string | undefined>();
  const load = () =>
    api<CommandView>('GET', `/v1/commands/${encodeURIComponent(id)}`)
      .then(setView)
      .catch((err) => setError(message(err)));
  useEffect(() => {
    void load();
  }, [id]);
  useCommandEvents(model, () => void load());
  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!view) return <p class="loading">Loading the command…</p>;
  return (
    <section aria-labelledby="command-title">
      <p>
        <a href="/commands">← Commands</a>
      </p>
      <h1 id="command-title">
        <code>{`${view.action} ${args(view)}`.trim()}</code>
      </h1>
      <dl class="facts">
        <dt>Operator</dt>
        <dd>{view.operator}</dd>
        <dt>Issued</dt>
        <dd>{time(view.issuedAt)}</dd>
        <dt>Expires</dt>
        <dd>{time(view.expiresAt)}</dd>
        {approvalState(view) && (
          <>
            <dt>Approvals</dt>
            <dd data-field="approvals">{approvalState(view)}</dd>
            <dt>Signed by</dt>
            <dd data-field="signers">
              {view.approvals!.signers.map((s, i) => (
                <span key={s.operator}>
                  {i > 0 && ', '}
                  {signer(s)}
                  {s.signedAt && <span class="muted"> at {time(s.signedAt)}</span>}
                </span>
              ))}
            </dd>
          </>
        )}
        <dt>Nodes</dt>
        <dd>{summary(view)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{view.id}</code>
        </dd>
      </dl>
      <div class="scroll-x">
        <table class="commands">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col">Exit</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {(view.targets ?? []).map((t) => (
              <tr key={t.nodeId} data-node={t.name}>
                <td>
                  <a href={`/nodes/${encodeURIComponent(t.nodeId)}`}>{t.name}</a>
                </td>
                <td>
                  <span class={`pill pill-${PILL[t.state]}`}>{t.state.replaceAll('_', ' ')}</span>
                </td>
                <td>{t.receipt?.exitCode ?? ''}</td>
                <td>{t.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {(view.targets ?? [])
        .filter((t) => t.receipt && (t.receipt.stdoutTail || t.receipt.stderrTail))
        .map((t) => (
          <section key={t.nodeId} class="card receipt" aria-label={`Output of ${t.name}`}>
            <h2>{t.name}</h2>
            <p class="muted">Receipt signed by the node.</p>
            <Output name="stdout" caption="Standard output (tail)" text={t.receipt!.stdoutTail} />
            <figure class="output" data-output="stdout-sha256">
              <figcaption>SHA-256 of all it wrote to stdout</figcaption>
              <code class="wrap">{t.receipt!.outputSha256}</code>
            </figure>
            <Output name="stderr" caption="Standard error (tail)" text={t.receipt!.stderrTail} />
          </section>
        ))}
    </section>
  );
}

/** One stream of a receipt under its own caption; an empty stream says so instead of a blank box. */
function Output({ name, caption, text }: { name: string; caption: string; text: string | undefined }) {
  return (
    <figure class="output" data-output={name}>
      <figcaption>{caption}</figcaption>
      {text ? <pre data-field={name}>{text}</pre> : <p class="muted">nothing</p>}
    </figure>
  );
}
