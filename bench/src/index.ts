import { UsageError } from '@muster/host';
import { parseDuration } from '@muster/proto';
import { accessScenario } from './access.js';
import { channelsScenario } from './channels.js';
import { consoleScenario } from './console.js';
import { enrollScenario } from './enroll.js';
import { eventsScenario } from './events.js';
import { fanoutScenario } from './fanout.js';
import { heartbeatScenario } from './heartbeat.js';
import { jobsScenario } from './jobs.js';
import { ledgerScenario } from './ledger.js';
import { limitsScenario } from './limits.js';
import { metricsScenario } from './metrics.js';
import { renewScenario } from './renew.js';

function count(value: unknown, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`--${flag}: "${String(value)}" is not a positive whole number`);
  }
  return Number(value);
}

function duration(value: unknown, fallback: string): number {
  const text = (value as string | undefined) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--duration: "${text}" is not a duration such as ${fallback}`);
  return ms;
}

type Values = Record<string, unknown>;

/** A scenario: what `muster bench --help` says of it, and how it runs with the parsed flags. */
export interface Scenario {
  summary: string;
  run(values: Values): Promise<void>;
}

const dbOf = (values: Values) => (values.db ? { db: values.db as string } : {});

/** `--replicas N`: more than one needs PostgreSQL, the only store replicas share. */
function replicasOf(values: Values): { replicas?: number } {
  if (values.replicas === undefined) return {};
  const replicas = count(values.replicas, 1, 'replicas');
  if (replicas > 2) throw new UsageError(`--replicas: ${replicas} is more than this scenario runs (1 or 2)`);
  if (replicas > 1 && !String(values.db ?? '').startsWith('postgres'))
    throw new UsageError('--replicas 2 needs --db postgres://…: replicas share one PostgreSQL database');
  return { replicas };
}

/**
 * Every scenario, by name, in the order `--help` lists them. The one list: the CLI's usage, its
 * check of the name and the dispatch below all read it, so none can leave a scenario out.
 */
export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  heartbeat: {
    summary: 'heartbeats per second through a real server, beside a bare HTTPS server',
    run: (values) =>
      heartbeatScenario({
        agents: count(values.agents, 200, 'agents'),
        durationMs: duration(values.duration, '10s'),
        ...dbOf(values),
        ...replicasOf(values),
        ...(values['signed-requests'] === true ? { signedRequests: true } : {}),
      }),
  },
  enroll: {
    summary: 'an enrollment storm',
    run: (values) =>
      enrollScenario({
        agents: count(values.agents, 10_000, 'agents'),
        concurrency: count(values.concurrency, 500, 'concurrency'),
        ...dbOf(values),
      }),
  },
  renew: {
    summary: 'a renewal storm, then the quiet phase after it',
    run: (values) =>
      renewScenario({
        agents: count(values.agents, 10_000, 'agents'),
        concurrency: count(values.concurrency, 500, 'concurrency'),
        durationMs: duration(values.duration, '3s'),
        ...dbOf(values),
      }),
  },
  channels: {
    summary: 'agent channels held at once, their memory and heartbeat-to-event latency',
    run: (values) =>
      channelsScenario({
        agents: count(values.agents, 20_000, 'agents'),
        durationMs: duration(values.duration, '20s'),
        processes: 4,
      }),
  },
  fanout: {
    summary: 'one command to every node holding a channel, five rounds',
    run: (values) =>
      fanoutScenario({
        agents: count(values.agents, 10_000, 'agents'),
        rounds: 5,
        processes: 4,
        ...dbOf(values),
        ...replicasOf(values),
      }),
  },
  events: {
    summary: 'event streams held while notes are written',
    run: (values) =>
      eventsScenario({
        streams: count(values.concurrency, 100, 'concurrency'),
        events: count(values.entries, 500, 'entries'),
        ...dbOf(values),
      }),
  },
  console: {
    summary: 'console frames under a stream of events (needs /usr/bin/chromium)',
    run: (values) =>
      consoleScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        eventsPerSec: count(values.rate, 1000, 'rate'),
        durationMs: duration(values.duration, '10s'),
        ...dbOf(values),
      }),
  },
  metrics: {
    summary: 'heartbeat latency idle and under a /metrics scrape every second, on N nodes in the store',
    run: (values) =>
      metricsScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        durationMs: duration(values.duration, '10s'),
        ...dbOf(values),
      }),
  },
  ledger: {
    summary: 'ledger appends, proofs and verification (the store alone)',
    run: (values) =>
      ledgerScenario({
        writers: count(values.concurrency, 500, 'concurrency'),
        durationMs: duration(values.duration, '5s'),
        entries: count(values.entries, 1_000_000, 'entries'),
      }),
  },
  jobs: {
    summary: 'the job.placed entry over N nodes: size, append, fetch with its inclusion proof',
    run: (values) =>
      jobsScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        entries: count(values.entries, 100_000, 'entries'),
      }),
  },
  access: {
    summary: 'node listings per second as a custom role of 20 narrowed rules, beside admin, on N nodes',
    run: (values) =>
      accessScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        durationMs: duration(values.duration, '5s'),
        concurrency: count(values.concurrency, 16, 'concurrency'),
        ...dbOf(values),
      }),
  },
  limits: {
    summary: 'the cost of a rate-limit check: in memory, and shared by replicas in PostgreSQL (--db)',
    run: (values) =>
      limitsScenario({
        takes: count(values.entries, 20_000, 'entries'),
        concurrency: count(values.concurrency, 16, 'concurrency'),
        ...dbOf(values),
      }),
  },
};

/** Runs one scenario by name with the flags `muster bench` parsed. */
export async function runScenario(name: string, values: Values): Promise<void> {
  const scenario = Object.hasOwn(SCENARIOS, name) ? SCENARIOS[name] : undefined;
  if (!scenario)
    throw new UsageError(`unknown scenario "${name}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  return scenario.run(values);
}
