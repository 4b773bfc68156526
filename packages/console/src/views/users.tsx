import type { RoleView, SignInLinkCreated, UserView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { useCan } from '../access.js';
import { api, message } from '../api.js';
import { time, until } from '../format.js';

/** Users: who may use Muster and with what role; add one, change a role, disable, make a sign-in link. */
export function UsersView() {
  const can = useCan();
  const [users, setUsers] = useState<UserView[] | undefined>();
  const [roles, setRoles] = useState<RoleView[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [link, setLink] = useState<{ user: string; made: SignInLinkCreated } | undefined>();

  const load = () =>
    api<{ items: UserView[] }>('GET', '/v1/users')
      .then((r) => setUsers(r.items))
      .catch((err) => setError(message(err)));
  useEffect(() => {
    void load();
    void api<{ items: RoleView[] }>('GET', '/v1/roles')
      .then((r) => setRoles(r.items))
      .catch((err) => setError(message(err)));
  }, []);

  /** Runs a change, then shows the list as the server now has it; a refusal is said on the page. */
  const act = async (run: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await run();
      await load();
    } catch (err) {
      setError(message(err));
    }
  };
  const makeLink = (user: string) =>
    act(async () => {
      const made = await api<SignInLinkCreated>('POST', `/v1/users/${encodeURIComponent(user)}/links`, {});
      setLink({ user, made });
    });

  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">Users</h1>
      <div class="split">
        {can('create', 'users') && <AddUser roles={roles} onAdded={(u) => act(async () => u)} />}
        {link && (
          <section class="card created" aria-labelledby="link-title">
            <h2 id="link-title">Sign-in link for {link.user}</h2>
            <p>
              Give it to {link.user} only: it signs in as them, once, {until(link.made.expiresAt, Date.now())}{' '}
              at the latest.
            </p>
            <pre class="link-out" data-field="signin-link">
              {`${location.origin}${link.made.path}`}
            </pre>
          </section>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!users ? (
        <p class="loading">Loading users…</p>
      ) : (
        <div class="scroll-x">
          <table class="users">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">By</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <UserRow
                  key={u.name}
                  user={u}
                  roles={roles}
                  mayChange={can('update', 'users')}
                  act={act}
                  makeLink={makeLink}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function UserRow({
  user,
  roles,
  mayChange,
  act,
  makeLink,
}: {
  user: UserView;
  roles: RoleView[];
  mayChange: boolean;
  act: (run: () => Promise<unknown>) => Promise<void>;
  makeLink: (user: string) => Promise<void>;
}) {
  const path = `/v1/users/${encodeURIComponent(user.name)}`;
  const setRole = (role: string) => act(() => api('POST', `${path}/role`, { role }));
  return (
    <tr data-user={user.name} data-state={user.disabled ? 'disabled' : 'active'}>
      <td>
        <strong>{user.name}</strong>
      </td>
      <td>
        {mayChange ? (
          <select
            aria-label={`Role of ${user.name}`}
            value={user.role}
            onChange={(e) => void setRole((e.target as HTMLSelectElement).value)}
          >
            {roleNames(roles, user.role).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        ) : (
          user.role
        )}
      </td>
      <td>
        <span class={`state state-${user.disabled ? 'revoked' : 'active'}`}>
          {user.disabled ? `disabled ${user.disabledAt ? time(user.disabledAt) : ''}`.trim() : 'active'}
        </span>
      </td>
      <td>{time(user.createdAt)}</td>
      <td>{user.createdBy}</td>
      <td>
        {mayChange && (
          <>
            <button
              type="button"
              class={user.disabled ? 'small' : 'small danger'}
              onClick={() => act(() => api('POST', `${path}/${user.disabled ? 'enable' : 'disable'}`))}
            >
              {user.disabled ? `Enable ${user.name}` : `Disable ${user.name}`}
            </button>{' '}
            {!user.disabled && (
              <button type="button" class="small" onClick={() => makeLink(user.name)}>
                Sign-in link
              </button>
            )}
          </>
        )}
      </td>
    </tr>
  );
}

/** The role names to choose from, with the user's current one even before the roles load. */
function roleNames(roles: RoleView[], current: string): string[] {
  const names = roles.map((r) => r.name);
  return names.includes(current) ? names : [current, ...names];
}

function AddUser({ roles, onAdded }: { roles: RoleView[]; onAdded: (u: UserView) => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [error, setError] = useState<string | undefined>();
  const [done, setDone] = useState<string | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setDone(undefined);
    try {
      const added = await api<UserView>('POST', '/v1/users', { name: name.trim(), role });
      setName('');
      setDone(`${added.name} added as ${added.role}. Make them a sign-in link below.`);
      onAdded(added);
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="add-user-title">
      <h2 id="add-user-title">Add a user</h2>
      <label for="u-name">Name</label>
      <input
        id="u-name"
        required
        pattern="[a-z][a-z0-9._\-]{0,62}"
        title="lower-case letters, digits, dot, dash or underscore, starting with a letter"
        value={name}
        onInput={(e) => setName((e.target as HTMLInputElement).value)}
        placeholder="alice"
      />
      <label for="u-role">Role</label>
      <select id="u-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
        {roleNames(roles, 'viewer').map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
      <button type="submit">Add user</button>
      {done && <p role="status">{done}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
