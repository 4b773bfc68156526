import { readFileSync } from 'node:fs';
import { AGENT_SETTINGS, agentConfigFrom, runAgent } from '@muster/agent';
import { jsonLog, UsageError } from '@muster/host';
import type { Command } from '../command.js';

export const agentCommand: Command = {
  path: ['agent'],
  summary: 'run the agent on this host (enrolls first if it holds no identity)',
  details:
    'The first run needs the line printed by `muster token create`:\n' +
    '  muster agent --server https://HOST:8443 --ca-pin sha256:… --token mjt_…\n' +
    'The key is made here and never leaves the host. Later runs need no token: the agent\n' +
    'resumes with the identity in its data dir.',
  settings: AGENT_SETTINGS,
  async run({ values, signal }) {
    let tokenFromFile: string | undefined;
    if (values['token-file'] !== undefined) {
      try {
        tokenFromFile = readFileSync(values['token-file'] as string, 'utf8').trim();
      } catch (err) {
        throw new UsageError(
          `--token-file: cannot read ${values['token-file']} (${(err as NodeJS.ErrnoException).code})`,
        );
      }
    }
    const config = agentConfigFrom(values, tokenFromFile);
    const log = jsonLog(config.logLevel, { svc: 'muster-agent' });
    await runAgent(config, log, signal);
    return 0;
  },
};
