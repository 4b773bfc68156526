import type { Command } from '../command.js';

export const serverCommand: Command = {
  path: ['server'],
  summary: 'run the control plane',
  details:
    'On first start it makes the data dir: the fleet CA, its own TLS identity and an admin\ntoken (mode 0600). Every flag has an environment variable; secrets are read from *_FILE.',
  settings: async () => (await loadServer()).SERVER_SETTINGS,
  async run({ values, signal }) {
    const { serverConfigFrom, startServer } = await loadServer();
    const config = serverConfigFrom(values);
    const server = await startServer(config);
    const out = process.stdout;
    for (const file of server.identity.created) out.write(`created ${file}\n`);
    out.write(
      `Muster server is running.\n` +
        `  agent plane  ${server.agentUrl}   (agents join at ${server.app.joinUrl()})\n` +
        `  admin API    ${server.adminUrl}\n` +
        `  console      ${await server.signInLink()}\n` +
        `               (a one-time sign-in link, good for 15 minutes; or sign in with the admin token)\n` +
        `  admin token  ${server.identity.paths.adminToken}\n` +
        `  store        ${config.db.startsWith('sqlite:') ? config.db : 'postgres'}\n` +
        `Make a join token with: muster token create --url ${server.adminUrl}\n`,
    );
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    out.write('stopping…\n');
    await server.stop();
    return 0;
  },
};

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
