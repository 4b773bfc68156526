import { UsageError } from '@muster/host';
import { type LoginCode, USER_NAME_PATTERN } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe } from '../output.js';

/** Prints a login code once, with the line its user runs on their own machine. */
export function printLoginCode(code: LoginCode, url: URL): void {
  const at = url.protocol === 'https:' ? url.origin : 'https://ADMIN-HOST:PORT';
  process.stdout.write(
    `Login code for ${safe(code.user)}, shown only now; it works once, until ${code.expiresAt}:\n\n` +
      `  ${code.code}\n\n` +
      `On their own machine they run:\n  muster login --url ${at} --code ${code.code}\n`,
  );
}

export const userLoginCode: Command = {
  path: ['user', 'login-code'],
  args: 'NAME',
  summary: "make a new one-time code for a user's first muster login (an older unused one stops working)",
  details:
    'For a user who never logged in, or whose certificate expired before they renewed it.\n\n' +
    'Example:\n  muster user login-code alice',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const [name, extra] = positionals;
    if (!name || extra !== undefined) throw new UsageError('give exactly one user NAME');
    if (!new RegExp(USER_NAME_PATTERN).test(name))
      throw new UsageError(`user NAME "${safe(name)}" must match ${USER_NAME_PATTERN}`);
    const client = adminClient(values);
    const code = await client.call<LoginCode>('POST', `/v1/users/${name}/login-code`);
    if (values.json) printJson(code);
    else printLoginCode(code, client.url);
    return 0;
  },
};
