import { UsageError } from '@muster/host';
import {
  INSTALL_AGENTS,
  type InstallAgent,
  type InstallInfo,
  installLine,
  parseLabels,
  type TokenCreated,
  TokenCreateRequest,
  type TokenView,
} from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { durationSeconds } from '../flags.js';
import { printJson, safe, table } from '../output.js';
import { uniqueId } from '../prefix.js';

export const tokenCreate: Command = {
  path: ['token', 'create'],
  summary: 'make a join token and print the exact `muster agent` line to run on a host',
  details:
    'The secret is shown once and stored only as a hash. By default a token is good for one\nenrollment within an hour.\n\n' +
    'With --install it also prints a one-line installer for a host that has nothing of Muster:\n' +
    'pasted there, it fetches the packaged agent (npm run package) from the agent plane over TLS\n' +
    "pinned to the fleet CA, checks the agent's SHA-256 against the package's manifest before it\n" +
    'runs anything, and starts it from ./muster-agent with the token in a 0600 file, never in argv.\n' +
    'It needs sh, curl and sha256sum on the host (Linux x86-64), and Node 20 or later for the bundle.\n\n' +
    'Examples:\n  muster token create --profile web --label env=prod --ttl 2h\n  muster token create --install --name web-1',
  settings: [
    {
      flag: 'ttl',
      kind: 'string',
      value: 'DURATION',
      help: 'how long the token can be used (default 1h, at most 30d)',
    },
    { flag: 'uses', kind: 'string', value: 'N', help: 'how many hosts may enroll with it (default 1)' },
    {
      flag: 'profile',
      kind: 'string',
      value: 'PROFILE',
      help: 'profile of the nodes it enrolls (default "default")',
    },
    { flag: 'label', kind: 'list', value: 'K=V', help: 'label given to the nodes it enrolls; repeatable' },
    { flag: 'name', kind: 'string', value: 'NAME', help: 'the node name the token is for' },
    {
      flag: 'install',
      kind: 'boolean',
      help: 'also print a one-line installer that fetches the packaged agent from the server and starts it',
    },
    {
      flag: 'install-agent',
      kind: 'string',
      value: 'executable|bundle',
      help: 'what the installer fetches: the executable (needs nothing) or the bundle (needs Node >= 20); implies --install (default: the executable, when packaged)',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const body: Record<string, unknown> = {};
    const ttlSec = durationSeconds(values, 'ttl', TokenCreateRequest.properties.ttlSec);
    if (ttlSec !== undefined) body.ttlSec = ttlSec;
    if (values.uses !== undefined) {
      if (!/^\d+$/.test(values.uses as string) || Number(values.uses) < 1) {
        throw new UsageError(`--uses: "${values.uses}" is not a positive whole number`);
      }
      body.uses = Number(values.uses);
    }
    if (values.profile !== undefined) body.profile = values.profile;
    if (values.name !== undefined) body.name = values.name;
    if (values.label !== undefined) {
      try {
        body.labels = parseLabels(values.label as string[]);
      } catch (err) {
        throw new UsageError(`--label: ${(err as Error).message}`);
      }
    }
    const client = adminClient(values);
    // Asked first, so a server with nothing to install refuses before a token is made.
    const install = await installPlan(client, values);
    const created = await client.call<TokenCreated>('POST', '/v1/tokens', body);
    const installCommand = install
      ? installLine({
          info: install.info,
          secret: created.secret,
          agent: install.agent,
          ...(created.name ? { name: created.name } : {}),
        })
      : undefined;
    if (values.json) {
      printJson(installCommand ? { ...created, installCommand } : created);
      return 0;
    }
    const uses = created.usesTotal === 1 ? '1 use' : `${created.usesTotal} uses`;
    process.stdout.write(
      `Join token ${created.id} created: ${uses}, profile ${created.profile}, expires ${created.expiresAt}.\n` +
        'The secret is shown only now. On the host to enroll, run:\n\n' +
        `  ${created.agentCommand}\n\n`,
    );
    if (install && installCommand) {
      const what =
        install.agent === 'executable'
          ? 'the agent executable (needs nothing)'
          : 'the agent bundle (needs Node >= 20)';
      process.stdout.write(
        `Or, on a Linux x86-64 host with nothing of Muster, paste this in the directory to install into;\n` +
          `it fetches ${what} ${install.info.manifest.version} into ./muster-agent and starts it:\n\n` +
          `  ${installCommand}\n\n`,
      );
    }
    return 0;
  },
};

/** With --install or --install-agent: what the server has to install and which file to fetch. */
async function installPlan(
  client: ReturnType<typeof adminClient>,
  values: Record<string, unknown>,
): Promise<{ info: InstallInfo; agent: InstallAgent } | undefined> {
  const asked = values['install-agent'] as string | undefined;
  if (!values.install && asked === undefined) return undefined;
  if (asked !== undefined && !Object.hasOwn(INSTALL_AGENTS, asked))
    throw new UsageError(`--install-agent: "${asked}" is not one of executable, bundle`);
  const info = await client.call<InstallInfo>('GET', '/v1/install');
  const packaged = (agent: InstallAgent) => info.manifest.files.some((f) => f.name === INSTALL_AGENTS[agent]);
  const agent = (asked as InstallAgent | undefined) ?? (packaged('executable') ? 'executable' : 'bundle');
  if (!packaged(agent))
    throw new Error(
      `the server's agent package has no ${INSTALL_AGENTS[agent]} (the ${agent}); build it with npm run package, or choose the other --install-agent`,
    );
  // Built once with a stand-in secret, so a URL or name the line cannot carry is refused before a token exists.
  installLine({ info, secret: 'mjt_check', agent });
  return { info, agent };
}

export const tokenList: Command = {
  path: ['token', 'ls'],
  summary: 'list join tokens and whether they can still be used',
  settings: ADMIN_SETTINGS,
  async run({ values }) {
    const { items } = await adminClient(values).call<{ items: TokenView[] }>('GET', '/v1/tokens');
    if (values.json) {
      printJson(items);
      return 0;
    }
    if (items.length === 0) {
      console.log('No join tokens. Make one with: muster token create');
      return 0;
    }
    console.log(
      table(
        ['ID', 'NAME', 'STATE', 'PROFILE', 'USES LEFT', 'EXPIRES', 'LABELS'],
        items.map((t) => [
          t.id,
          t.name === null ? '-' : safe(t.name),
          t.state,
          safe(t.profile),
          `${t.usesLeft}/${t.usesTotal}`,
          t.expiresAt,
          safe(
            Object.entries(t.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          ),
        ]),
      ),
    );
    return 0;
  },
};

export const tokenRevoke: Command = {
  path: ['token', 'revoke'],
  args: 'ID',
  summary: 'revoke a join token so no host can enroll with it',
  details: 'ID may be any unique prefix of the id (at least 4 characters), as `muster token ls` shows it.',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const [given, extra] = positionals;
    if (!given || extra !== undefined)
      throw new UsageError('expected exactly one token ID (see muster token ls)');
    const client = adminClient(values);
    const { items } = await client.call<{ items: TokenView[] }>('GET', '/v1/tokens');
    const id = uniqueId(
      given,
      items.map((t) => t.id),
      'token',
    );
    await client.call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
    if (values.json) {
      printJson({ id, revoked: true });
      return 0;
    }
    console.log(`Join token ${id} revoked.`);
    return 0;
  },
};
