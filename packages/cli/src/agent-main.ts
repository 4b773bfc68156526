#!/usr/bin/env node
// `muster-agent`: the agent on its own, as `npm run package` bundles it. It runs the same code as
// `muster agent` (commands/agent.ts) and imports nothing of the server, so the bundle needs no
// node_modules and no native addon. `muster-agent [flags]` is `muster agent [flags]`.
import { ConfigError, formatSettingsHelp, readSettings, ServerError, UsageError } from '@muster/host';
import { MUSTER_VERSION } from '@muster/proto';
import { agentCommand } from './commands/agent.js';

const NAME = 'muster-agent';

function help(): string {
  const settings = agentCommand.settings as Parameters<typeof formatSettingsHelp>[0];
  return [
    `Usage: ${NAME} [flags]`,
    '',
    `The Muster agent on its own: ${agentCommand.summary}; the same as \`muster agent\`.`,
    '',
    agentCommand.details!.replaceAll('muster agent', NAME),
    '',
    'Flags:',
    formatSettingsHelp(settings),
    '',
    'Exit codes: 0 success, 1 the agent failed, 2 usage error.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  // `muster-agent agent …` is accepted too, so a join line pasted with its verb still works.
  const given = argv.filter((a) => a !== '--debug');
  const args = given[0] === 'agent' ? given.slice(1) : given;
  if (args.includes('--help') || args.includes('-h')) {
    console.log(help());
    return 0;
  }
  if (args[0] === '--version' || args[0] === 'version') {
    console.log(MUSTER_VERSION);
    return 0;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const settings = agentCommand.settings as Parameters<typeof readSettings>[0];
    const { values, positionals, problems } = readSettings(settings, args, process.env);
    if (problems.length > 0) throw new ConfigError(problems);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return (
      (await agentCommand.run({ values, positionals, env: process.env, signal: controller.signal })) ?? 0
    );
  } catch (err) {
    const e = err as Error;
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`${NAME}: ${e.message}\nSee: ${NAME} --help`);
      return 2;
    }
    console.error(`${NAME}: ${e.message}${err instanceof ServerError ? ` (${err.status})` : ''}`);
    if (argv.includes('--debug')) console.error(e.stack);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(`${NAME}: ${err.message}`);
    process.exitCode = 1;
  },
);
