#!/usr/bin/env node
import { ConfigError, formatSettingsHelp, readSettings, ServerError, UsageError } from '@muster/host';
import { MUSTER_VERSION } from '@muster/proto';
import { ConnectionError } from './client.js';
import type { Command } from './command.js';
import { COMMANDS } from './commands/index.js';
import { flagProblem } from './flags.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const command of COMMANDS) {
    if (command.path.every((word, i) => argv[i] === word) && command.path.length > (best?.path.length ?? 0)) {
      best = command;
    }
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

function generalHelp(): string {
  const rows = COMMANDS.map(
    (c) => [`muster ${c.path.join(' ')}${c.args ? ` ${c.args}` : ''}`, c.summary] as const,
  );
  const width = Math.max(...rows.map(([usage]) => usage.length)) + 2;
  return [
    'muster: a fleet control plane. Agents enroll over mTLS, report, run the commands operators sign, and every decision is recorded.',
    '',
    'Usage: muster <command> [flags]',
    '',
    ...rows.map(([usage, summary]) => `  ${usage.padEnd(width)}${summary}`),
    '',
    'Every command and group takes --help (or -h); muster -v prints the version. Listing and show commands take --json.',
    'Exit codes: 0 success, 1 the operation failed, 2 usage error. --debug shows stack traces.',
  ].join('\n');
}

/** The usage of a verb group (`muster nodes`): its verbs and what each does. */
function groupHelp(group: string): string {
  const verbs = COMMANDS.filter((c) => c.path[0] === group && c.path.length > 1);
  const rows = verbs.map((c) => [`muster ${c.path.join(' ')}${c.args ? ` ${c.args}` : ''}`, c.summary]);
  const width = Math.max(...rows.map(([usage]) => usage!.length)) + 2;
  return [
    `Usage: muster ${group} <${verbs.map((c) => c.path[1]).join('|')}> [flags]`,
    '',
    ...rows.map(([usage, summary]) => `  ${usage!.padEnd(width)}${summary}`),
    '',
    `See muster ${group} <subcommand> --help for its flags.`,
  ].join('\n');
}

async function commandHelp(command: Command): Promise<string> {
  const settings = typeof command.settings === 'function' ? await command.settings() : command.settings;
  const details = typeof command.details === 'function' ? await command.details() : command.details;
  return [
    `Usage: muster ${command.path.join(' ')}${command.args ? ` ${command.args}` : ''} [flags]`,
    '',
    `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`,
    ...(details ? ['', details] : []),
    ...(settings.length > 0 ? ['', 'Flags:', formatSettingsHelp(settings)] : []),
  ].join('\n');
}

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

/** The flags every admin verb takes that carry a value. */
const REACH_FLAGS = new Set(['--url', '--data-dir', '--token-file', '--token']);

/**
 * `muster --url URL nodes ls`: the flags that find the control plane may come before the verb,
 * as in `git -C DIR log`; they are handed to the verb as if written after it.
 */
function leadingFlags(args: readonly string[]): { leading: string[]; words: string[] } {
  let i = 0;
  while (i < args.length) {
    const flag = args[i]!.split('=')[0]!;
    if (!REACH_FLAGS.has(flag) && flag !== '--json') break;
    i += REACH_FLAGS.has(args[i]!) && i + 1 < args.length ? 2 : 1;
  }
  return { leading: args.slice(0, i), words: args.slice(i) };
}

/** A group alone, a group with --help, or a group with a word it does not know. */
function answerGroup(args: readonly string[]): number {
  const [group, word] = args;
  if (isHelp(word)) {
    console.log(groupHelp(group!));
    return EXIT_OK;
  }
  const why = word === undefined ? 'expected a subcommand' : `unknown subcommand "${word}"`;
  console.error(`muster ${group}: ${why}\n\n${groupHelp(group!)}`);
  return EXIT_USAGE;
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let args = argv.filter((a) => a !== '--debug');
  // `muster help nodes ls` is `muster nodes ls --help`.
  if (args[0] === 'help' && args.length > 1) args = [...args.slice(1), '--help'];
  if (args.length === 0) {
    console.error(generalHelp());
    return EXIT_USAGE;
  }
  if (args[0] === 'help' || isHelp(args[0])) {
    console.log(generalHelp());
    return EXIT_OK;
  }
  if (args[0] === '--version' || args[0] === '-v' || args[0] === 'version') {
    console.log(MUSTER_VERSION);
    return EXIT_OK;
  }
  const { leading, words } = leadingFlags(args);
  const found = findCommand(words);
  if (!found) {
    if (COMMANDS.some((c) => c.path[0] === words[0])) return answerGroup(words);
    console.error(
      words.length === 0
        ? `muster: expected a command after ${leading.join(' ')}; see muster --help`
        : `muster: unknown command "${words[0]}"; see muster --help`,
    );
    return EXIT_USAGE;
  }
  const { command } = found;
  const rest = [...leading, ...found.rest];
  // After `--` everything belongs to the command (muster run … -- ACTION ARG…), --help included.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.some(isHelp)) {
    console.log(await commandHelp(command));
    return EXIT_OK;
  }
  return runCommand(command, rest, debug);
}

async function runCommand(command: Command, rest: string[], debug: boolean): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130); // a second Ctrl-C means now
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const name = `muster ${command.path.join(' ')}`;
  try {
    const context = { argv: rest, env: process.env, signal: controller.signal };
    if (command.readsOwnSettings) {
      return (await command.run({ ...context, values: {}, positionals: [] })) ?? EXIT_OK;
    }
    const settings = typeof command.settings === 'function' ? await command.settings() : command.settings;
    const { values, positionals, problems } = readSettings(settings, rest, process.env);
    if (problems.length > 0) throw new ConfigError(problems);
    if (!command.args && positionals.length > 0)
      throw new UsageError(`unexpected argument "${positionals[0]}"`);
    try {
      return (await command.run({ ...context, values, positionals })) ?? EXIT_OK;
    } catch (err) {
      // The server's words about a body field, in terms of the flag that set it: a usage error.
      const problem =
        err instanceof ServerError && err.status === 400 && err.problem?.detail
          ? flagProblem(
              err.problem.detail,
              settings.map((s) => s.flag),
            )
          : undefined;
      throw problem ? new UsageError(problem) : err;
    }
  } catch (err) {
    const e = err as Error;
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`${name}: ${e.message}\nSee: ${name} --help`);
      return EXIT_USAGE;
    }
    if (err instanceof ServerError) console.error(`${name}: ${e.message} (${err.status})`);
    else if (err instanceof ConnectionError) console.error(`${name}: ${e.message}`);
    else console.error(`${name}: ${describe(e)}`);
    if (debug) console.error(e.stack);
    return EXIT_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** One sentence for errors that come from the system rather than from Muster. */
function describe(err: Error & { code?: string; address?: string; port?: number }): string {
  if (err.code === 'EADDRINUSE') return `cannot listen on ${err.address}:${err.port}: the address is in use`;
  if (err.code === 'EACCES' && err.port !== undefined)
    return `cannot listen on port ${err.port}: permission denied`;
  if (err.code === 'EACCES' || err.code === 'EPERM') return `permission denied: ${err.message}`;
  return err.message;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(`muster: ${err.message}`);
    process.exitCode = EXIT_FAILED;
  },
);
