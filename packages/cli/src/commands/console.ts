import type { SignInLinkCreated } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson } from '../output.js';

export const consoleLink: Command = {
  path: ['console', 'link'],
  summary: 'print a fresh one-time link that opens the console signed in',
  details:
    'The link works once, for 15 minutes, and gives a 12-hour console session. It is made when\n' +
    'asked for, so that no sign-in code sits in a log; the server prints one only on a terminal.\n\n' +
    'Example:\n  muster console link --url http://127.0.0.1:8080 --data-dir ./.muster',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const client = adminClient(values);
    const created = await client.call<SignInLinkCreated>('POST', '/v1/console/links', {});
    const link = new URL(created.path, client.url).toString();
    if (values.json) printJson({ link, expiresAt: created.expiresAt });
    else process.stdout.write(`${link}\n`);
    return 0;
  },
};
