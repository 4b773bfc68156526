import type { MeView, SessionView } from '@muster/proto';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { canFor, Me } from './access.js';
import { ApiError, api, setSessionToken } from './api.js';
import { FleetModel } from './model.js';
import { currentPath, matchRoute, navigate, onNavigate } from './router.js';
import { finishSso } from './sso.js';
import './style.css';
import { CommandDetail, CommandsView } from './views/commands.js';
import { EventsView } from './views/events.js';
import { FleetBar } from './views/fleet-bar.js';
import { LedgerView } from './views/ledger.js';
import { NodeDetail } from './views/node-detail.js';
import { NodesView } from './views/nodes.js';
import { SignIn } from './views/sign-in.js';
import { TokensView } from './views/tokens.js';
import { UsersView } from './views/users.js';

type Session =
  | { state: 'checking' }
  | { state: 'out'; note?: string }
  | { state: 'in'; session: SessionView; me: MeView };

const NAV = [
  { path: '/nodes', page: 'nodes', label: 'Nodes' },
  { path: '/events', page: 'events', label: 'Events' },
  { path: '/commands', page: 'commands', label: 'Commands' },
  { path: '/tokens', page: 'tokens', label: 'Tokens' },
  { path: '/ledger', page: 'ledger', label: 'Ledger' },
  { path: '/users', page: 'users', label: 'Users' },
];

const linkCode = () => /(?:^#|&)code=([^&]+)/.exec(location.hash)?.[1];

/**
 * A sign-in link carries a one-time code in the fragment: it is used once and wiped from the URL
 * (with the rest of the fragment, so no history entry keeps it).
 */
async function redeemLinkCode(): Promise<string | undefined> {
  const code = linkCode();
  if (!code) return undefined;
  history.replaceState(null, '', location.pathname + location.search);
  try {
    await api('POST', '/v1/session', { code: decodeURIComponent(code) });
    return undefined;
  } catch (err) {
    return err instanceof ApiError ? err.message : 'the sign-in link did not work';
  }
}

function App() {
  const [session, setSession] = useState<Session>({ state: 'checking' });
  const [path, setPath] = useState(currentPath());
  useEffect(() => onNavigate(() => setPath(currentPath())), []);

  const signedOut = (note?: string) => setSession(note ? { state: 'out', note } : { state: 'out' });
  const check = async (note?: string) => {
    try {
      const s = await api<SessionView>('GET', '/v1/session');
      setSessionToken(s.csrf, () => signedOut('Your session has ended. Sign in again.'));
      const me = await api<MeView>('GET', '/v1/me');
      setSession({ state: 'in', session: s, me });
    } catch {
      setSessionToken(undefined, () => {});
      signedOut(note);
    }
  };
  useEffect(() => {
    void (async () => check((await finishSso()) ?? (await redeemLinkCode())))();
    // A link pasted into a tab already showing the console changes only the fragment: the page
    // is not loaded again, so the code is read here too.
    const onHash = () => {
      if (!linkCode()) return;
      setSession({ state: 'checking' });
      void (async () => check(await redeemLinkCode()))();
    };
    addEventListener('hashchange', onHash);
    // A page brought back from the back-forward cache asks the server again before showing data.
    const onShow = (e: PageTransitionEvent) => e.persisted && location.reload();
    addEventListener('pageshow', onShow);
    return () => {
      removeEventListener('hashchange', onHash);
      removeEventListener('pageshow', onShow);
    };
  }, []);

  if (session.state === 'checking') return <p class="loading">Loading…</p>;
  if (session.state === 'out') {
    return (
      <SignIn
        note={session.note}
        onSignedIn={() => check().then(() => path.startsWith('/signin') && navigate('/nodes', true))}
      />
    );
  }
  return (
    <Me.Provider value={session.me}>
      <Console
        key={session.session.csrf}
        path={path}
        me={session.me}
        onSignedOut={() => signedOut('Your session has ended. Sign in again.')}
      />
    </Me.Provider>
  );
}

function Console({ path, me, onSignedOut }: { path: string; me: MeView; onSignedOut: () => void }) {
  const can = canFor(me);
  // Users are for those who may manage them; everything else any role may read.
  const nav = NAV.filter((n) => n.page !== 'users' || can('update', 'users'));
  const model = useMemo(() => new FleetModel(onSignedOut), []);
  useEffect(() => {
    void model.start().catch(() => {});
    return () => model.stop();
  }, [model]);
  useEffect(() => {
    if (path.startsWith('/signin') || path === '/') navigate('/nodes', true);
  }, [path]);
  const route = matchRoute(path);
  const active = route.page === 'node' ? 'nodes' : route.page === 'command' ? 'commands' : route.page;

  const signOut = async () => {
    try {
      await api('DELETE', '/v1/session');
    } finally {
      model.stop();
      // A fresh document: nothing of the fleet stays in memory or in this page's history entry.
      location.replace('/signin');
    }
  };

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Muster</span>
        <nav aria-label="Console">
          {nav.map((n) => (
            <a key={n.path} href={n.path} aria-current={active === n.page ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <span class="who" data-field="me">
          <span class="sr-only">Signed in as </span>
          <strong data-field="user">{me.user}</strong>{' '}
          <span class="role" data-field="role">
            {me.roles.map((r) => r.name).join(' + ')}
          </span>
        </span>
        <button type="button" class="quiet" onClick={signOut}>
          Sign out
        </button>
      </header>
      <FleetBar model={model} />
      <main id="main" tabIndex={-1}>
        {route.page === 'nodes' && <NodesView model={model} />}
        {route.page === 'node' && route.id !== undefined && <NodeDetail model={model} id={route.id} />}
        {route.page === 'events' && <EventsView model={model} />}
        {route.page === 'commands' && <CommandsView model={model} />}
        {route.page === 'command' && route.id !== undefined && <CommandDetail model={model} id={route.id} />}
        {route.page === 'tokens' && <TokensView />}
        {route.page === 'ledger' && <LedgerView model={model} />}
        {route.page === 'users' && <UsersView />}
        {![
          'nodes',
          'node',
          'events',
          'commands',
          'command',
          'tokens',
          'ledger',
          'users',
          'signin',
          '',
        ].includes(route.page) && (
          <p>
            There is no such page. <a href="/nodes">Go to the nodes</a>.
          </p>
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
