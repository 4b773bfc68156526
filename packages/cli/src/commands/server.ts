import { resolve } from 'node:path';
import { formatSettingsInForce } from '@muster/host';
import type { Command } from '../command.js';
import { displayPath } from '../output.js';

export const serverCommand: Command = {
  path: ['server'],
  summary: 'run the control plane',
  details:
    'On first start it makes the data dir: the fleet CA, its own TLS identity and an admin\ntoken (mode 0600). Every flag has an environment variable and a key of the same name in\na --config file (TOML); flags beat the environment, which beats the file. Secrets are read\nfrom *_FILE variables and *-file keys. Every bad flag, variable, key and value is reported\nat once. --print-config shows what is in force and where each value came from.',
  settings: async () => (await loadServer()).SERVER_COMMAND_SETTINGS,
  readsOwnSettings: true,
  async run({ argv, env, signal }) {
    const { loadServerSettings, startServer, SERVER_SETTINGS } = await loadServer();
    const { config, values, sources, printConfig } = loadServerSettings(argv, env);
    if (printConfig) {
      process.stdout.write(formatSettingsInForce(SERVER_SETTINGS, values, sources));
      return 0;
    }
    const server = await startServer(config);
    const out = process.stdout;
    const reach = adminFlagsFor(server.adminUrl, config, { always: true });
    for (const file of server.identity.created) out.write(`created ${file}\n`);
    out.write(
      `Muster server is running.\n` +
        `  agent plane  ${server.agentUrl}   (agents join at ${server.app.joinUrl()})\n` +
        `  admin API    ${server.adminUrl}\n` +
        (await consoleLines(server, reach, '  console      ', '               ')) +
        `  admin token  ${server.identity.paths.adminToken}\n` +
        `  store        ${config.db.startsWith('sqlite:') ? config.db : 'postgres'}\n` +
        `Make a join token with: muster token create${reach}\n` +
        `  (admin verbs find the server with --url and its token with --data-dir or --token-file)\n`,
    );
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    out.write('stopping…\n');
    await server.stop();
    return 0;
  },
};

/** The admin API as a browser or the CLI on this host reaches it (a wildcard bind is not an address). */
export function reachableAdminUrl(adminUrl: string): string {
  return adminUrl.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

/**
 * The flags an admin verb run in this folder needs to reach this server with its token: `--url`
 * unless it is the default, and where the token is unless the default data dir holds it.
 * `always` spells both out, for a hint that may be read from elsewhere.
 */
export function adminFlagsFor(
  adminUrl: string,
  config: { dataDir: string; adminTokenFile?: string },
  { always = false, cwd = process.cwd() } = {},
): string {
  const url = reachableAdminUrl(adminUrl);
  const flags: string[] = [];
  if (always || url !== 'http://127.0.0.1:8080') flags.push(`--url ${url}`);
  if (config.adminTokenFile) flags.push(`--token-file ${displayPath(config.adminTokenFile, cwd)}`);
  else if (always || config.dataDir !== resolve(cwd, '.muster'))
    flags.push(`--data-dir ${displayPath(config.dataDir, cwd)}`);
  return flags.map((f) => ` ${f}`).join('');
}

/**
 * The console lines of the start banner. A one-time sign-in link (a 12-hour admin session) is
 * printed only to a terminal: stdout under systemd or a container ends up in journald and every
 * log collector. Elsewhere the banner says how to get one.
 */
export async function consoleLines(
  server: { adminUrl: string; signInLink(): Promise<string> },
  reach: string,
  first: string,
  rest: string,
): Promise<string> {
  if (process.stdout.isTTY) {
    return (
      `${first}${await server.signInLink()}\n` +
      `${rest}(a one-time sign-in link, good for 15 minutes; or sign in with the admin token)\n`
    );
  }
  return (
    `${first}${reachableAdminUrl(server.adminUrl)}/\n` +
    `${rest}(sign in with the admin token, or make a one-time link: muster console link${reach})\n`
  );
}

/** The server role is an optional part of the install: hosts that only run agents lack it. */
export async function loadServer(): Promise<typeof import('@muster/server')> {
  try {
    return await import('@muster/server');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error('the server role is not installed here (the @muster/server package is missing)');
    }
    throw err;
  }
}
