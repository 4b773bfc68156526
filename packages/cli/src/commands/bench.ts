import { UsageError } from '@muster/host';
import type { Command } from '../command.js';

export const benchCommand: Command = {
  path: ['bench'],
  args: 'SCENARIO',
  summary: 'run a benchmark scenario against a real server on loopback (--help lists them)',
  details: async () => {
    const lines = [
      'Each scenario prints one JSON line per figure, beside the limit measured in the same run.',
      "Scenarios raise the server's rate limits for their own run and say so.",
      '',
    ];
    const bench = await loadBench().catch((err: Error) => err);
    if (bench instanceof Error) return [...lines, bench.message].join('\n');
    const names = Object.keys(bench.SCENARIOS);
    const width = Math.max(...names.map((n) => n.length)) + 2;
    lines.push('Scenarios:', ...names.map((n) => `  ${n.padEnd(width)}${bench.SCENARIOS[n]!.summary}`));
    return lines.join('\n');
  },
  settings: [
    {
      flag: 'agents',
      kind: 'string',
      value: 'N',
      help: 'simulated agents (heartbeat: default 200; enroll and renew: 10000; channels: 20000; console and metrics: nodes in the store, 10000)',
    },
    {
      flag: 'duration',
      kind: 'string',
      value: 'DURATION',
      help: 'how long to measure (heartbeat: default 10s; renew: the quiet phase, default 3s; console: each page under events, 10s)',
    },
    {
      flag: 'concurrency',
      kind: 'string',
      value: 'N',
      help: 'enrollments or renewals in flight (enroll, renew: default 500), concurrent appenders (ledger, default 500) or event streams held (events, default 100)',
    },
    {
      flag: 'entries',
      kind: 'string',
      value: 'N',
      help: 'ledger: size of the log proofs and verify are timed at (default 1000000); events: events written (default 500)',
    },
    {
      flag: 'rate',
      kind: 'string',
      value: 'N',
      help: 'console: events written per second while frames are measured (default 1000)',
    },
    {
      flag: 'db',
      kind: 'string',
      value: 'URL',
      help: 'store to bench against (default: a fresh SQLite file)',
    },
    {
      flag: 'replicas',
      kind: 'string',
      value: 'N',
      help: 'heartbeat, fanout: 2 also measures two replicas on the same database in the same run (needs --db postgres://…)',
    },
    {
      flag: 'signed-requests',
      kind: 'boolean',
      help: 'heartbeat: also measure RFC 9421 signed requests on --proxied-listen beside mTLS, same run',
    },
  ],
  async run({ values, positionals }) {
    const [scenario, extra] = positionals;
    const bench = await loadBench();
    const names = Object.keys(bench.SCENARIOS);
    if (!scenario || extra !== undefined) throw new UsageError(`expected one SCENARIO: ${names.join(', ')}`);
    if (!Object.hasOwn(bench.SCENARIOS, scenario))
      throw new UsageError(`unknown scenario "${scenario}"; one of: ${names.join(', ')}`);
    await bench.runScenario(scenario, values);
    return 0;
  },
};

interface Bench {
  SCENARIOS: Readonly<Record<string, { summary: string }>>;
  runScenario(name: string, values: Record<string, unknown>): Promise<void>;
}

/** The benchmarks are an optional part of the install, resolved at run time. */
async function loadBench(): Promise<Bench> {
  const specifier = '@muster/bench';
  try {
    return (await import(specifier)) as Bench;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error('the benchmarks are not installed here; run them from a clone of the repository');
  }
}
