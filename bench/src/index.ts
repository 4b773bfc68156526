import { parseDuration } from '@muster/proto';
import { channelsScenario } from './channels.js';
import { enrollScenario } from './enroll.js';
import { heartbeatScenario } from './heartbeat.js';
import { ledgerScenario } from './ledger.js';

const SCENARIOS = ['heartbeat', 'enroll', 'ledger', 'channels'] as const;

function count(value: unknown, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new Error(`--${flag}: "${String(value)}" is not a positive whole number`);
  }
  return Number(value);
}

/** Runs one scenario by name with the flags `muster bench` parsed. */
export async function runScenario(name: string, values: Record<string, unknown>): Promise<void> {
  const db = values.db as string | undefined;
  switch (name) {
    case 'heartbeat': {
      const durationText = (values.duration as string | undefined) ?? '10s';
      const durationMs = parseDuration(durationText);
      if (durationMs === undefined)
        throw new Error(`--duration: "${durationText}" is not a duration such as 10s`);
      return heartbeatScenario({
        agents: count(values.agents, 200, 'agents'),
        durationMs,
        ...(db ? { db } : {}),
      });
    }
    case 'enroll':
      return enrollScenario({
        agents: count(values.agents, 10_000, 'agents'),
        concurrency: count(values.concurrency, 500, 'concurrency'),
        ...(db ? { db } : {}),
      });
    case 'channels': {
      const durationText = (values.duration as string | undefined) ?? '20s';
      const durationMs = parseDuration(durationText);
      if (durationMs === undefined)
        throw new Error(`--duration: "${durationText}" is not a duration such as 20s`);
      return channelsScenario({ agents: count(values.agents, 20_000, 'agents'), durationMs, processes: 4 });
    }
    case 'ledger': {
      const durationText = (values.duration as string | undefined) ?? '5s';
      const durationMs = parseDuration(durationText);
      if (durationMs === undefined)
        throw new Error(`--duration: "${durationText}" is not a duration such as 5s`);
      return ledgerScenario({
        writers: count(values.concurrency, 500, 'concurrency'),
        durationMs,
        entries: count(values.entries, 1_000_000, 'entries'),
      });
    }
    default:
      throw new Error(`unknown scenario "${name}"; one of: ${SCENARIOS.join(', ')}`);
  }
}
