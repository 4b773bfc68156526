import { useEffect, useState } from 'preact/hooks';
import { api, message } from '../api.js';
import { ssoOffered, startSso } from '../sso.js';

/** The admin token exchanged for a session; the token itself is never kept by the page. */
export function SignIn({ note, onSignedIn }: { note?: string | undefined; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [sso, setSso] = useState(false);
  useEffect(() => {
    void ssoOffered().then(setSso);
  }, []);
  const signInWithSso = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await startSso();
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api('POST', '/v1/session', { token: token.trim() });
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Muster console</h1>
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      {sso && (
        <button type="button" class="sso" disabled={busy} onClick={signInWithSso}>
          Sign in with SSO
        </button>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <label for="admin-token">Admin token</label>
        <input
          id="admin-token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="hint">
        The admin token is in <code>&lt;data-dir&gt;/admin.token</code> on the server's host.{' '}
        <code>muster server</code> and <code>muster demo</code> also print a one-time sign-in link when they
        start.
      </p>
    </main>
  );
}
