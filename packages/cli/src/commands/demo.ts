import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AgentConfig, DEFAULT_RENEW_FRACTION, loadIdentity, runAgent } from '@muster/agent';
import { formatSettingsInForce, jsonLog } from '@muster/host';
import { keyFingerprint, type TokenCreated } from '@muster/proto';
import type { Command } from '../command.js';
import { displayPath } from '../output.js';
import { setUpDemoCommands } from './demo-commands.js';
import { adminFlagsFor, consoleLines, loadServer } from './server.js';

/** The three agents of the demo: different profiles and labels, as a small fleet would have. */
const DEMO_NODES = [
  { name: 'web-1', profile: 'web', labels: { env: 'demo', role: 'frontend' } },
  { name: 'db-1', profile: 'db', labels: { env: 'demo', role: 'database' } },
  { name: 'batch-1', profile: 'batch', labels: { env: 'demo', role: 'worker' } },
] as const;

export const demoCommand: Command = {
  path: ['demo'],
  summary: 'a control plane on SQLite plus three local agents, in one go (what `npm start` runs)',
  details:
    'Everything lives in the data dir (default ./.muster); running the demo again resumes the same\nfleet. Ctrl-C stops the agents and the server cleanly.',
  settings: async () => (await loadServer()).SERVER_COMMAND_SETTINGS,
  readsOwnSettings: true,
  async run({ argv, env, signal }) {
    const { loadServerSettings, startServer, SERVER_SETTINGS } = await loadServer();
    const loaded = loadServerSettings(argv, env, { 'heartbeat-interval': '5s', 'log-level': 'warn' });
    if (loaded.printConfig) {
      process.stdout.write(formatSettingsInForce(SERVER_SETTINGS, loaded.values, loaded.sources));
      return 0;
    }
    const { config } = loaded;
    const server = await startServer(config);
    const agents = new AbortController();
    const running: Promise<void>[] = [];
    const reported = new Set<string>();
    let allReported!: () => void;
    const ready = new Promise<void>((resolve) => {
      allReported = resolve;
    });
    try {
      const operatorKey = await setUpDemoCommands(server, config.dataDir);
      for (const node of DEMO_NODES) {
        const dataDir = join(config.dataDir, 'demo-agents', node.name);
        const agentConfig: AgentConfig = {
          dataDir,
          name: node.name,
          profile: node.profile,
          labels: node.labels,
          services: [],
          logLevel: 'warn',
          renewFraction: DEFAULT_RENEW_FRACTION,
          rekey: false,
          server: new URL(server.agentUrl.replace('0.0.0.0', '127.0.0.1')),
          caPin: server.identity.ca.pin,
          rootPin: keyFingerprint(server.identity.fleetRoot.publicKey),
          ...((await loadIdentity(dataDir)) ? {} : { token: await demoToken(server, node) }),
        };
        const log = jsonLog('warn', { svc: 'muster-agent', node: node.name });
        running.push(
          runAgent(agentConfig, log, agents.signal, {
            onHeartbeat: () => {
              reported.add(node.name);
              if (reported.size === DEMO_NODES.length) allReported();
            },
          }).catch((err: Error) => {
            process.stderr.write(`demo agent ${node.name} stopped: ${err.message}\n`);
          }),
        );
      }
      // Unreferenced: a pending wait for slow agents must not hold the process open after Ctrl-C.
      await Promise.race([
        ready,
        new Promise((resolve) => setTimeout(resolve, 15_000).unref()),
        aborted(signal),
      ]);
      if (!signal.aborted) {
        const status =
          reported.size < DEMO_NODES.length ? `${reported.size} reporting so far` : 'all reporting';
        process.stdout.write(
          `\nMuster demo is running: a control plane on SQLite and ${DEMO_NODES.length} agents on this host.\n\n` +
            (await consoleLines(
              server,
              adminFlagsFor(server.adminUrl, config),
              '  console       ',
              '                ',
            )) +
            `  admin API     ${server.adminUrl}\n` +
            `  admin token   ${server.identity.paths.adminToken}\n` +
            `  agent plane   ${server.agentUrl}\n` +
            `  data dir      ${config.dataDir}\n` +
            `  nodes         ${DEMO_NODES.map((n) => `${n.name} (${n.profile})`).join(', ')}, ${status}\n\n` +
            demoHints(adminFlagsFor(server.adminUrl, config), operatorKey) +
            '\nPress Ctrl-C to stop.\n',
        );
        await aborted(signal);
      }
    } finally {
      process.stdout.write('stopping the demo…\n');
      agents.abort();
      await Promise.all(running);
      await server.stop();
    }
    return 0;
  },
};

/**
 * What to try next, as lines that work from this folder: with `--url`/`--data-dir` when the demo
 * does not run on the defaults, and without `npx` (the npm registry's `muster` is another program).
 */
function demoHints(reach: string, operatorKey: string | undefined): string {
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  return (
    `In another terminal, in this folder (muster on your PATH, or: alias muster='node ${main}'):\n` +
    `  muster nodes ls${reach}\n` +
    `  muster nodes show web-1${reach}\n` +
    `  muster token create --profile web --label env=demo${reach}\n` +
    (operatorKey
      ? `  muster run --key ${displayPath(operatorKey)} --operator demo --target all --wait${reach} -- uptime\n`
      : '')
  );
}

async function demoToken(
  server: Awaited<ReturnType<Awaited<ReturnType<typeof loadServer>>['startServer']>>,
  node: (typeof DEMO_NODES)[number],
): Promise<string> {
  const auth = { authorization: `Bearer ${server.identity.adminToken}` };
  // A node left behind by an earlier demo whose agent lost its identity holds the name: retire it.
  const existing = await server.app.admin.inject({
    method: 'GET',
    url: `/v1/nodes/${node.name}`,
    headers: auth,
  });
  if (existing.statusCode === 200 && existing.json().status !== 'decommissioned') {
    await server.app.admin.inject({ method: 'DELETE', url: `/v1/nodes/${node.name}`, headers: auth });
  }
  const res = await server.app.admin.inject({
    method: 'POST',
    url: '/v1/tokens',
    headers: auth,
    payload: { name: node.name, profile: node.profile, labels: node.labels, ttlSec: 600 },
  });
  if (res.statusCode !== 201) throw new Error(`demo could not make a join token: ${res.body}`);
  return (res.json() as TokenCreated).secret;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
