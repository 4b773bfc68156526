import { readFile } from 'node:fs/promises';
import {
  AGENT_COMMAND_SETTINGS,
  AGENT_SETTINGS,
  agentConfigFrom,
  readAgentSettings,
  runAgent,
} from '@muster/agent';
import { ConfigError, formatSettingsInForce, jsonLog, UsageError } from '@muster/host';
import type { Command } from '../command.js';
import { requestedText } from './agent-request.js';

/** More than any join token: a file this large is not one. */
const MAX_TOKEN_BYTES = 4096;

export const agentCommand: Command = {
  path: ['agent'],
  summary: 'run the agent on this host (enrolls first if it holds no identity)',
  details:
    'The first run needs the line printed by `muster token create`:\n' +
    "  printf '%s' 'mjt_…' | muster agent --server https://HOST:8443 --ca-pin sha256:… --root-pin sha256:… --token-file -\n" +
    'The token goes in on stdin (or from a 0600 file with --token-file FILE), never on the command\n' +
    'line, where every local user could read it in ps. The key is made here and never leaves the\n' +
    'host. Later runs need no token: the agent resumes with the identity in its data dir.\n' +
    'With several replicas, give --server once for each (or one name with several addresses): the\n' +
    'agent stays with the one that answers and moves to the next when it is lost. HTTPS_PROXY and\n' +
    'NO_PROXY are honoured (HTTP CONNECT, mTLS end to end). Every setting can also be a key in a\n' +
    '--config file (TOML; server = ["https://HOST:8443"], token-file = "/etc/muster/join-token");\n' +
    'flags beat the environment, which beats the file. --print-config shows what is in force.\n' +
    'Without a token: --request --server URL --ca-pin sha256:… queues a request, prints the key\n' +
    'fingerprint for the operator to compare (muster nodes approve NAME --fingerprint …), and waits.\n' +
    'With no route to the server: muster agent request --out FILE, then muster agent --grant GRANT.',
  settings: AGENT_COMMAND_SETTINGS,
  readsOwnSettings: true,
  async run({ argv, env, signal }) {
    if (env.MUSTER_JOIN_TOKEN !== undefined)
      throw new UsageError(
        'MUSTER_JOIN_TOKEN is not read, a secret does not belong in the environment: put the token in a file and set MUSTER_JOIN_TOKEN_FILE to its path',
      );
    const { values, sources, problems, printConfig } = readAgentSettings(argv, env);
    if (problems.length > 0) throw new ConfigError(problems);
    if (printConfig) {
      process.stdout.write(formatSettingsInForce(AGENT_SETTINGS, values, sources));
      return 0;
    }
    const file = values['token-file'] as string | undefined;
    const tokenFromFile = file === undefined ? undefined : await readToken(file);
    const config = agentConfigFrom(values, tokenFromFile);
    const log = jsonLog(config.logLevel, { svc: 'muster-agent' });
    await runAgent(config, log, signal, {
      onRequested: (state, server) => console.log(requestedText(state, server)),
    });
    return 0;
  },
};

/** The join token from a file, or from stdin for `-`, as the join line pipes it. */
async function readToken(file: string): Promise<string> {
  const where = file === '-' ? 'stdin' : file;
  let text: string;
  if (file === '-') {
    if (process.stdin.isTTY)
      throw new UsageError(
        "--token-file -: stdin is a terminal; pipe the token in, as the join line does (printf '%s' TOKEN | muster agent … --token-file -)",
      );
    text = await readStdin();
  } else {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`--token-file: ${where} holds no join token`);
  if (Buffer.byteLength(text) > MAX_TOKEN_BYTES || /\s/.test(token))
    throw new UsageError(
      `--token-file: ${where} does not hold a single join token (it has spaces or several lines)`,
    );
  return token;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    // Stop reading early: the length is refused above anyway.
    if (size > MAX_TOKEN_BYTES) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}
