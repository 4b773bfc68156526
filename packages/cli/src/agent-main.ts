#!/usr/bin/env node
// `muster-agent`: the agent on its own, as `npm run package` bundles it. It runs the same code as
// `muster agent` and `muster doctor --agent-data-dir` and imports nothing of the server, so the bundle needs
// no node_modules and no native addon. `muster-agent [flags]` is `muster agent [flags]`;
// `muster-agent doctor [--data-dir DIR]` is `muster doctor --agent-data-dir DIR`.
import {
  ConfigError,
  formatSettingsHelp,
  readSettings,
  ServerError,
  type SettingSpec,
  UsageError,
} from '@muster/host';
import { MUSTER_VERSION } from '@muster/proto';
import type { Command } from './command.js';
import { agentCommand } from './commands/agent.js';
import { agentRequest } from './commands/agent-request.js';
import { doctorAgentCommand } from './commands/doctor-agent.js';

const NAME = 'muster-agent';

async function help(command: Command, usage: string): Promise<string> {
  const details = typeof command.details === 'function' ? await command.details() : (command.details ?? '');
  return [
    `Usage: ${usage} [flags]`,
    '',
    `The Muster agent on its own: ${command.summary}.`,
    '',
    details.replaceAll('muster agent', NAME),
    ...(command === agentCommand ? ['', `${NAME} doctor checks this host; see ${NAME} doctor --help.`] : []),
    '',
    'Flags:',
    formatSettingsHelp(command.settings as readonly SettingSpec[]),
    '',
    'Exit codes: 0 success, 1 failed, 2 usage error.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const given = argv.filter((a) => a !== '--debug');
  // `muster-agent agent …` is accepted too, so a join line pasted with its verb still works.
  const doctor = given[0] === 'doctor';
  // `muster-agent request --out FILE`: the offline request, on a host that has only the agent.
  const request = given[0] === 'request';
  const command = doctor ? doctorAgentCommand : request ? agentRequest : agentCommand;
  const name = doctor ? `${NAME} doctor` : request ? `${NAME} request` : NAME;
  const args = doctor || request || given[0] === 'agent' ? given.slice(1) : given;
  if (args.includes('--help') || args.includes('-h')) {
    console.log(await help(command, name));
    return 0;
  }
  if (!doctor && !request && (args[0] === '--version' || args[0] === 'version')) {
    console.log(MUSTER_VERSION);
    return 0;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const context = { argv: args, env: process.env, signal: controller.signal };
    if (command.readsOwnSettings)
      return (await command.run({ ...context, values: {}, positionals: [] })) ?? 0;
    const { values, positionals, problems } = readSettings(
      command.settings as readonly SettingSpec[],
      args,
      process.env,
    );
    if (problems.length > 0) throw new ConfigError(problems);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return (await command.run({ ...context, values, positionals })) ?? 0;
  } catch (err) {
    const e = err as Error;
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`${name}: ${e.message}\nSee: ${name} --help`);
      return 2;
    }
    console.error(`${name}: ${e.message}${err instanceof ServerError ? ` (${err.status})` : ''}`);
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
