import type { TokenCreated, TokenView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { useCan } from '../access.js';
import { api, message } from '../api.js';
import { labelText, time } from '../format.js';

const TTLS = [
  { sec: 900, label: '15 min' },
  { sec: 3600, label: '1 h' },
  { sec: 6 * 3600, label: '6 h' },
  { sec: 86_400, label: '24 h' },
  { sec: 7 * 86_400, label: '7 d' },
];

/** `env=prod, role=web` → `{env: 'prod', role: 'web'}`; the server checks names and values. */
function parseLabels(text: string): Record<string, string> | string {
  const labels: Record<string, string> = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) return `"${part}" is not key=value`;
    labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return labels;
}

/** Join tokens: make one (its secret is shown once, with the agent line), list them, revoke. */
export function TokensView() {
  const can = useCan();
  const [tokens, setTokens] = useState<TokenView[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [created, setCreated] = useState<TokenCreated | undefined>();
  const [form, setForm] = useState({ name: '', profile: '', labels: '', uses: '1', ttl: '3600' });
  const [confirming, setConfirming] = useState<string | undefined>();
  const [copied, setCopied] = useState(false);

  const load = () =>
    api<{ items: TokenView[] }>('GET', '/v1/tokens')
      .then((r) => setTokens(r.items))
      .catch((err) => setError(message(err)));
  useEffect(() => {
    void load();
  }, []);

  const field = (key: keyof typeof form) => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value }),
  });

  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setCopied(false);
    const labels = parseLabels(form.labels);
    if (typeof labels === 'string') {
      setError(labels);
      return;
    }
    try {
      const token = await api<TokenCreated>('POST', '/v1/tokens', {
        ...(form.name.trim() ? { name: form.name.trim() } : {}),
        ...(form.profile.trim() ? { profile: form.profile.trim() } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
        uses: Number(form.uses),
        ttlSec: Number(form.ttl),
      });
      setCreated(token);
      void load();
    } catch (err) {
      setError(message(err));
    }
  };

  const revoke = async (id: string) => {
    setConfirming(undefined);
    try {
      await api('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
      void load();
    } catch (err) {
      setError(message(err));
    }
  };

  const copy = async () => {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.agentCommand);
      setCopied(true);
    } catch {
      setError('the browser did not allow copying; select the line and copy it by hand');
    }
  };

  return (
    <section aria-labelledby="tokens-title">
      <h1 id="tokens-title">Join tokens</h1>
      {!can('create', 'tokens') && (
        <p class="muted" data-field="read-only">
          Your role may list join tokens but not make or revoke them.
        </p>
      )}
      {error && !can('create', 'tokens') && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="split">
        {can('create', 'tokens') && (
          <form class="card" onSubmit={create} aria-labelledby="create-title">
            <h2 id="create-title">Create a token</h2>
            <label for="t-name">Node name (optional)</label>
            <input id="t-name" {...field('name')} placeholder="web-7" />
            <label for="t-profile">Profile</label>
            <input id="t-profile" {...field('profile')} placeholder="default" />
            <label for="t-labels">Labels</label>
            <input id="t-labels" {...field('labels')} placeholder="env=prod, role=web" />
            <label for="t-uses">Uses</label>
            <input id="t-uses" type="number" min={1} max={1000000} required {...field('uses')} />
            <label for="t-ttl">Valid for</label>
            <select id="t-ttl" {...field('ttl')}>
              {TTLS.map((t) => (
                <option key={t.sec} value={String(t.sec)}>
                  {t.label}
                </option>
              ))}
            </select>
            <button type="submit">Create token</button>
            {error && (
              <p class="error" role="alert">
                {error}
              </p>
            )}
          </form>
        )}
        {created && (
          <section class="card created" aria-labelledby="created-title">
            <h2 id="created-title">Token {created.id} created</h2>
            <p>Run this on the host that should join. The secret is shown only now.</p>
            <pre class="agent-line" data-field="agent-line">
              {created.agentCommand}
            </pre>
            <button type="button" onClick={copy}>
              Copy the agent line
            </button>
            {copied && <span role="status"> Copied.</span>}
          </section>
        )}
      </div>
      <h2>All tokens</h2>
      {!tokens ? (
        <p class="loading">Loading tokens…</p>
      ) : tokens.length === 0 ? (
        <p class="muted">No tokens yet.</p>
      ) : (
        <div class="scroll-x">
          <table class="tokens">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Name</th>
                <th scope="col">Profile</th>
                <th scope="col">Labels</th>
                <th scope="col">Uses left</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id} data-token={t.id}>
                  <td>
                    <code>{t.id}</code>
                  </td>
                  <td>{t.name ?? ''}</td>
                  <td>{t.profile}</td>
                  <td>{labelText(t.labels).join(', ')}</td>
                  <td>
                    {t.usesLeft} of {t.usesTotal}
                  </td>
                  <td>{time(t.expiresAt)}</td>
                  <td>
                    <span class={`state state-${t.state}`}>{t.state}</span>
                  </td>
                  <td>
                    {t.state === 'active' &&
                      can('delete', 'tokens') &&
                      (confirming === t.id ? (
                        <>
                          <button type="button" class="small danger" onClick={() => revoke(t.id)}>
                            Revoke {t.id}
                          </button>{' '}
                          <button type="button" class="small quiet" onClick={() => setConfirming(undefined)}>
                            Keep
                          </button>
                        </>
                      ) : (
                        <button type="button" class="small" onClick={() => setConfirming(t.id)}>
                          Revoke…
                        </button>
                      ))}
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
