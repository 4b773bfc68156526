import { parseDuration } from '@muster/proto';
import { channelsScenario } from './channels.js';
import { consoleScenario } from './console.js';
import { enrollScenario } from './enroll.js';
import { eventsScenario } from './events.js';
import { fanoutScenario } from './fanout.js';
import { heartbeatScenario } from './heartbeat.js';
import { ledgerScenario } from './ledger.js';
import { metricsScenario } from './metrics.js';
import { renewScenario } from './renew.js';

const SCENARIOS = [
  'heartbeat',
  'enroll',
  'renew',
  'ledger',
  'channels',
  'events',
  'console',
  'metrics',
] as const;

function count(value: unknown, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new Error(`--${flag}: "${String(value)}" is not a positive whole number`);
  }
  return Number(value);
}

function duration(value: unknown, fallback: string): number {
  const text = (value as string | undefined) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`--duration: "${text}" is not a duration such as ${fallback}`);
  return ms;
}

/** Runs one scenario by name with the flags `muster bench` parsed. */
export async function runScenario(name: string, values: Record<string, unknown>): Promise<void> {
  const db = values.db as string | undefined;
  switch (name) {
    case 'heartbeat':
      return heartbeatScenario({
        agents: count(values.agents, 200, 'agents'),
        durationMs: duration(values.duration, '10s'),
        ...(db ? { db } : {}),
      });
    case 'enroll':
      return enrollScenario({
        agents: count(values.agents, 10_000, 'agents'),
        concurrency: count(values.concurrency, 500, 'concurrency'),
        ...(db ? { db } : {}),
      });
    case 'renew':
      return renewScenario({
        agents: count(values.agents, 10_000, 'agents'),
        concurrency: count(values.concurrency, 500, 'concurrency'),
        durationMs: duration(values.duration, '3s'),
        ...(db ? { db } : {}),
      });
    case 'channels':
      return channelsScenario({
        agents: count(values.agents, 20_000, 'agents'),
        durationMs: duration(values.duration, '20s'),
        processes: 4,
      });
    case 'fanout':
      return fanoutScenario({
        agents: count(values.agents, 10_000, 'agents'),
        rounds: 5,
        processes: 4,
        ...(db ? { db } : {}),
      });
    case 'console':
      return consoleScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        eventsPerSec: count(values.rate, 1000, 'rate'),
        durationMs: duration(values.duration, '10s'),
        ...(db ? { db } : {}),
      });
    case 'metrics':
      return metricsScenario({
        nodes: count(values.agents, 10_000, 'agents'),
        durationMs: duration(values.duration, '10s'),
        ...(db ? { db } : {}),
      });
    case 'events':
      return eventsScenario({
        streams: count(values.concurrency, 100, 'concurrency'),
        events: count(values.entries, 500, 'entries'),
        ...(db ? { db } : {}),
      });
    case 'ledger':
      return ledgerScenario({
        writers: count(values.concurrency, 500, 'concurrency'),
        durationMs: duration(values.duration, '5s'),
        entries: count(values.entries, 1_000_000, 'entries'),
      });
    default:
      throw new Error(`unknown scenario "${name}"; one of: ${SCENARIOS.join(', ')}`);
  }
}
