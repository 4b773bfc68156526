import { UsageError } from '@muster/host';
import {
  EMAIL_PATTERN,
  ROLE_NAME_PATTERN,
  type SignInLinkCreated,
  USER_NAME_PATTERN,
  type UserCertificatesRevoked,
  type UserCreated,
  type UserView,
} from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe, table } from '../output.js';
import { printLoginCode } from './login-code.js';

export function one(positionals: string[], what: string, pattern: string): string {
  const [name, extra] = positionals;
  if (!name || extra !== undefined) throw new UsageError(`give exactly one ${what}`);
  if (!new RegExp(pattern).test(name)) throw new UsageError(`${what} "${safe(name)}" must match ${pattern}`);
  return name;
}

function printUser(user: UserView): void {
  const email = user.email ? `, e-mail ${safe(user.email)}` : '';
  console.log(
    `User ${safe(user.name)}: role ${safe(user.role)}${email}, ${user.disabled ? `disabled since ${user.disabledAt}` : 'enabled'}, added ${user.createdAt} by ${safe(user.createdBy)}.`,
  );
}

/** An e-mail as SSO matches it, or a usage error naming the flag. */
function emailOf(text: string, where: string): string {
  if (text.length > 320 || !new RegExp(EMAIL_PATTERN).test(text))
    throw new UsageError(`${where}: "${safe(text)}" is not an e-mail address (name@domain)`);
  return text;
}

export const userAdd: Command = {
  path: ['user', 'add'],
  args: 'NAME',
  summary: 'add a user (a person, or a robot user for automation) with a role',
  details:
    'Roles: viewer, operator, admin, or a custom one from `muster role apply`.\n' +
    'Prints a one-time login code (24 h) for their first `muster login`. Other credentials:\n' +
    '`muster apitoken create --user NAME`, a console sign-in link with `muster user link NAME`,\n' +
    'or an --email for single sign-on (--oidc-issuer).\n\n' +
    'Example:\n  muster user add alice --role operator --email alice@example.com',
  settings: [
    { flag: 'role', kind: 'string', value: 'ROLE', help: 'required: the role the user acts with' },
    {
      flag: 'email',
      kind: 'string',
      value: 'EMAIL',
      help: 'the e-mail single sign-on matches the user by (their verified e-mail at the provider)',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const name = one(positionals, 'user NAME', USER_NAME_PATTERN);
    const role = values.role as string | undefined;
    if (role === undefined)
      throw new UsageError('--role is required: viewer, operator, admin or a custom role');
    if (!new RegExp(ROLE_NAME_PATTERN).test(role))
      throw new UsageError(`--role: "${safe(role)}" is not a role name`);
    const email = values.email === undefined ? undefined : emailOf(values.email as string, '--email');
    const client = adminClient(values);
    const user = await client.call<UserCreated>('POST', '/v1/users', {
      name,
      role,
      ...(email !== undefined ? { email } : {}),
    });
    if (values.json) printJson(user);
    else {
      printUser(user);
      printLoginCode(user.loginCode, client.url);
    }
    return 0;
  },
};

export const userList: Command = {
  path: ['user', 'ls'],
  summary: 'list users, their roles and whether they are enabled',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<{ items: UserView[] }>('GET', '/v1/users');
    if (values.json) {
      printJson(items);
      return 0;
    }
    console.log(
      table(
        ['NAME', 'ROLE', 'STATE', 'EMAIL', 'ADDED', 'BY'],
        items.map((u) => [
          safe(u.name),
          safe(u.role),
          u.disabled ? 'disabled' : 'enabled',
          u.email ? safe(u.email) : '-',
          u.createdAt,
          safe(u.createdBy),
        ]),
      ),
    );
    return 0;
  },
};

export const userShow: Command = {
  path: ['user', 'show'],
  args: 'NAME',
  summary: "show one user's role and state",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const name = one(positionals, 'user NAME', USER_NAME_PATTERN);
    const user = await adminClient(values).call<UserView>('GET', `/v1/users/${name}`);
    if (values.json) printJson(user);
    else printUser(user);
    return 0;
  },
};

export const userSetRole: Command = {
  path: ['user', 'set-role'],
  args: 'NAME ROLE',
  summary: "change a user's role; it applies to every credential of theirs at once",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const [name, role, extra] = positionals;
    if (!name || !role || extra !== undefined) throw new UsageError('give a user NAME and a ROLE');
    one([name], 'user NAME', USER_NAME_PATTERN);
    one([role], 'ROLE', ROLE_NAME_PATTERN);
    const user = await adminClient(values).call<UserView>('POST', `/v1/users/${name}/role`, { role });
    if (values.json) printJson(user);
    else printUser(user);
    return 0;
  },
};

const TOGGLE_DETAILS = {
  disable:
    'Every credential of the user is refused from the next request on, on every replica. Their\n' +
    'personal certificates are revoked and their console sessions, unused login codes and sign-in\n' +
    'links end, for good. Their API tokens only stop: enabling the user brings those back\n' +
    '(revoke them with muster apitoken revoke ID). A ledger decision.\n\n' +
    'Example:\n  muster user disable alice',
  enable:
    'The user may sign in again with their role. API tokens of theirs that have not expired or been\n' +
    'revoked work again; a certificate needs a new code (muster user login-code NAME, then\n' +
    'muster login --code CODE), a console session a new link (muster user link NAME). A ledger decision.\n\n' +
    'Example:\n  muster user enable alice',
};

function toggle(verb: 'disable' | 'enable', summary: string): Command {
  return {
    path: ['user', verb],
    args: 'NAME',
    summary,
    details: TOGGLE_DETAILS[verb],
    settings: ADMIN_SETTINGS,
    async run({ values, positionals }) {
      const name = one(positionals, 'user NAME', USER_NAME_PATTERN);
      const user = await adminClient(values).call<UserView>('POST', `/v1/users/${name}/${verb}`);
      if (values.json) printJson(user);
      else printUser(user);
      return 0;
    },
  };
}
export const userDisable = toggle(
  'disable',
  'stop every credential of a user at once, on every replica (certificates and sessions for good)',
);
export const userEnable = toggle(
  'enable',
  'let a disabled user in again: their API tokens work again, certificates need a new login code',
);

export const userSetEmail: Command = {
  path: ['user', 'set-email'],
  args: 'NAME [EMAIL]',
  summary: 'set the e-mail single sign-on matches a user by, or remove it with --none',
  details:
    'Console single sign-on (--oidc-issuer on the server) signs in the user whose e-mail is the\n' +
    'verified e-mail the identity provider vouches for. One e-mail names one user.\n\n' +
    'Examples:\n  muster user set-email alice alice@example.com\n  muster user set-email alice --none',
  settings: [
    { flag: 'none', kind: 'boolean', help: 'remove the e-mail: the user can no longer sign in by SSO' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const [name, email, extra] = positionals;
    if (!name || extra !== undefined || (email === undefined) === (values.none !== true))
      throw new UsageError('give a user NAME and an EMAIL, or NAME and --none');
    one([name], 'user NAME', USER_NAME_PATTERN);
    const body = { email: email === undefined ? null : emailOf(email, 'EMAIL') };
    const user = await adminClient(values).call<UserView>('POST', `/v1/users/${name}/email`, body);
    if (values.json) printJson(user);
    else printUser(user);
    return 0;
  },
};

export const userLink: Command = {
  path: ['user', 'link'],
  args: 'NAME',
  summary: "print a one-time link that opens the console signed in as that user, with the user's role",
  details:
    'The link works once, for 15 minutes, and gives a 12-hour console session that ends at once\n' +
    'if the user is disabled. Making it is a ledger decision naming who asked and for whom.\n' +
    'Send it to the user over a channel you trust: whoever opens it first is signed in.\n\n' +
    'Example:\n  muster user link alice --url http://127.0.0.1:8080 --data-dir ./.muster',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const name = one(positionals, 'user NAME', USER_NAME_PATTERN);
    const client = adminClient(values);
    const created = await client.call<SignInLinkCreated>('POST', `/v1/users/${name}/links`, {});
    const link = new URL(created.path, client.url).toString();
    if (values.json) printJson({ user: name, link, expiresAt: created.expiresAt });
    else process.stdout.write(`${link}\n`);
    return 0;
  },
};

export const userRevokeCerts: Command = {
  path: ['user', 'revoke-certs'],
  args: 'NAME',
  summary: "revoke a user's personal certificates from muster login, at once, on every replica",
  details:
    'Revokes every current certificate of the user (a lost laptop, a leaked key), or only the one\n' +
    'with --serial (muster login prints it; so does the ledger entry user.certificate_issued).\n' +
    'A revoked certificate is refused from the next request on and cannot be renewed; nothing\n' +
    'brings it back, not even `muster user enable`. The user signs in again with a new code:\n' +
    '`muster user login-code NAME`, then `muster login --code CODE`. API tokens and console\n' +
    'sessions are not touched (muster apitoken revoke, muster user disable). A ledger decision.\n\n' +
    'Examples:\n  muster user revoke-certs alice\n  muster user revoke-certs alice --serial 3f9c…',
  settings: [
    { flag: 'serial', kind: 'string', value: 'SERIAL', help: 'revoke only this certificate (hex serial)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const name = one(positionals, 'user NAME', USER_NAME_PATTERN);
    const serial = values.serial as string | undefined;
    if (serial !== undefined && !/^[0-9a-fA-F]{1,64}$/.test(serial))
      throw new UsageError(`--serial: "${safe(serial)}" is not a certificate serial (hex digits)`);
    const result = await adminClient(values).call<UserCertificatesRevoked>(
      'POST',
      `/v1/users/${name}/certificates/revoke`,
      serial === undefined ? {} : { serial },
    );
    if (values.json) printJson(result);
    else if (result.revoked.length === 0)
      console.log(
        `User ${safe(name)} had no current certificate${serial ? ` ${safe(serial)}` : ''}; nothing revoked.`,
      );
    else
      console.log(
        `Revoked ${result.revoked.length} certificate${result.revoked.length === 1 ? '' : 's'} of ${safe(name)}: ${result.revoked.join(', ')}.`,
      );
    return 0;
  },
};
