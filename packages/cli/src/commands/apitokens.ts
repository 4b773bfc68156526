import { UsageError } from '@muster/host';
import {
  type ApiTokenCreated,
  type ApiTokenView,
  parseDuration,
  ROLE_NAME_PATTERN,
  USER_NAME_PATTERN,
} from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe, table } from '../output.js';
import { uniqueId } from '../prefix.js';

export const apitokenCreate: Command = {
  path: ['apitoken', 'create'],
  summary: 'make an API token for scripts: for yourself, or (as an admin) for another user',
  details:
    'The secret is shown once and stored only as a hash. A token never acts above its\n' +
    "user's role, nor above yours; --role narrows it further.\n\n" +
    'Example:\n  muster apitoken create --name ci --ttl 90d --role viewer --user ci-bot',
  settings: [
    { flag: 'name', kind: 'string', value: 'NAME', help: 'what the token is for' },
    { flag: 'ttl', kind: 'string', value: 'DURATION', help: 'how long it works (default 30d, at most 366d)' },
    { flag: 'role', kind: 'string', value: 'ROLE', help: "act with this role, within the user's own" },
    { flag: 'user', kind: 'string', value: 'NAME', help: 'the user it belongs to (default: you)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError('apitoken create takes no arguments, only flags');
    const body: Record<string, unknown> = {};
    if (values.name !== undefined) body.name = values.name;
    if (values.ttl !== undefined) {
      const ms = parseDuration(values.ttl as string);
      if (ms === undefined || ms < 60_000 || ms > 366 * 86_400_000)
        throw new UsageError(
          `--ttl: "${safe(values.ttl as string)}" is not a duration from 1m to 366d, such as 30d`,
        );
      body.ttlSec = Math.round(ms / 1000);
    }
    if (values.role !== undefined) {
      if (!new RegExp(ROLE_NAME_PATTERN).test(values.role as string))
        throw new UsageError(`--role: "${safe(values.role as string)}" is not a role name`);
      body.role = values.role;
    }
    if (values.user !== undefined) {
      if (!new RegExp(USER_NAME_PATTERN).test(values.user as string))
        throw new UsageError(`--user: "${safe(values.user as string)}" is not a user name`);
      body.user = values.user;
    }
    const created = await adminClient(values).call<ApiTokenCreated>('POST', '/v1/apitokens', body);
    if (values.json) {
      printJson(created);
      return 0;
    }
    process.stdout.write(
      `API token ${created.id} for ${safe(created.user)} created${created.role ? `, role ${safe(created.role)}` : ''}, expires ${created.expiresAt}.\n` +
        'The secret is shown only now; store it where the script reads it (MUSTER_TOKEN_FILE):\n\n' +
        `  ${created.secret}\n\n`,
    );
    return 0;
  },
};

export const apitokenList: Command = {
  path: ['apitoken', 'ls'],
  summary: 'list API tokens: yours, or everyone’s when your role reads them',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<{ items: ApiTokenView[] }>('GET', '/v1/apitokens');
    if (values.json) {
      printJson(items);
      return 0;
    }
    console.log(
      table(
        ['ID', 'USER', 'NAME', 'ROLE', 'STATE', 'EXPIRES', 'LAST USED'],
        items.map((t) => [
          t.id,
          safe(t.user),
          t.name === null ? '-' : safe(t.name),
          t.role === null ? '(user’s)' : safe(t.role),
          t.state,
          t.expiresAt ?? 'never',
          t.lastUsedAt ?? 'never',
        ]),
      ),
    );
    return 0;
  },
};

export const apitokenRevoke: Command = {
  path: ['apitoken', 'revoke'],
  args: 'ID',
  summary: 'revoke an API token; `bootstrap` retires the admin.token made at first start',
  details: 'ID may be any unique prefix of the id (at least 4 characters), as `muster apitoken ls` shows it.',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const [given, extra] = positionals;
    if (!given || extra !== undefined)
      throw new UsageError('expected exactly one API token ID (see muster apitoken ls)');
    const client = adminClient(values);
    const { items } = await client.call<{ items: ApiTokenView[] }>('GET', '/v1/apitokens');
    const id = uniqueId(
      given,
      items.map((t) => t.id),
      'API token',
    );
    await client.call('DELETE', `/v1/apitokens/${encodeURIComponent(id)}`);
    if (values.json) printJson({ id, revoked: true });
    else console.log(`API token ${id} revoked.`);
    return 0;
  },
};
