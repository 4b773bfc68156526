import { ServerError, UsageError } from '@muster/host';
import { EVENT_KINDS, type EventEnvelope, type EventGap, type EventList, parseDuration } from '@muster/proto';
import { ADMIN_SETTINGS, type AdminClient, adminClient, ConnectionError } from '../client.js';
import type { Command } from '../command.js';
import { checkKinds } from '../kinds.js';
import { printJson, safe, table } from '../output.js';
import { SseParser } from '../sse.js';

const MAX_PAGE = 1000;

interface Filters {
  kinds?: string[];
  node?: string;
  since?: string;
}

export const eventsCommand: Command = {
  path: ['events'],
  summary: 'the fleet history (decisions, status, operator notes), oldest first; --follow tails it live',
  details: [
    'History is printed oldest first and ends with the newest event. With --follow the newest few',
    'are printed and then new events as they happen, until Ctrl-C; a dropped stream reconnects and',
    'resumes where it left off (Last-Event-ID), and history lost to retention is announced.',
    'With --json, history is one JSON array; with --follow, one JSON envelope per line.',
    '',
    'Example: muster events --kind node.enrolled,node.decommissioned --since 24h',
  ].join('\n'),
  settings: [
    { flag: 'follow', kind: 'boolean', help: 'keep printing new events as they happen (Ctrl-C stops)' },
    { flag: 'kind', kind: 'string', value: 'K', help: 'only events of this kind (several: comma-separated)' },
    { flag: 'node', kind: 'string', value: 'NODE', help: 'only events about this node (its name or id)' },
    {
      flag: 'since',
      kind: 'string',
      value: 'T',
      help: 'only events since T: a duration back (1h, 7d) or an RFC 3339 time',
    },
    {
      flag: 'limit',
      kind: 'string',
      value: 'N',
      help: 'at most the newest N events of history (default 100; 10 with --follow)',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, signal }) {
    const follow = values.follow === true;
    const json = values.json === true;
    const filters = readFilters(values);
    const limit = readLimit(values.limit as string | undefined, follow ? 10 : 100);
    const client = adminClient(values);
    if (filters.kinds)
      await checkKinds('--kind', filters.kinds, EVENT_KINDS, async (kind) => {
        const page = await client.call<EventList>(
          'GET',
          `/v1/events?${new URLSearchParams({ kind, limit: '1' })}`,
        );
        return page.items.length > 0;
      });
    const names = await nodeNames(client);
    // The stream resumes after the newest event of all, read before the history so that nothing
    // falls between the two; what both hold is printed once.
    const latest = follow ? await client.call<EventList>('GET', '/v1/events?limit=1') : undefined;
    const history = await fetchHistory(client, filters, limit);
    history.reverse();
    if (!follow) {
      if (json) printJson(history);
      else if (history.length === 0) console.log('no events');
      else
        console.log(
          table(
            HEADERS,
            history.map((e) => row(e, names)),
          ),
        );
      return 0;
    }
    const print = (event: EventEnvelope) => {
      if (event.nodeId && typeof event.data.name === 'string') names.set(event.nodeId, event.data.name);
      if (json) process.stdout.write(`${JSON.stringify(event)}\n`);
      else console.log(line(event, names));
    };
    for (const event of history) print(event);
    const shown = history.at(-1)?.id ?? 0;
    const query = new URLSearchParams();
    if (filters.kinds && filters.kinds.length > 0) query.set('kind', filters.kinds.join(','));
    if (filters.node) query.set('node', filters.node);
    await followStream(client, `/v1/events/stream?${query}`, latest?.items[0]?.id ?? 0, signal, (event) => {
      if (event.id > shown) print(event);
    });
    return 0;
  },
};

const HEADERS = ['TIME', 'SEVERITY', 'KIND', 'NODE', 'ACTOR', 'DETAIL'] as const;

function row(event: EventEnvelope, names: Map<string, string>): string[] {
  return [
    event.ts.replace(/\.\d+Z$/, 'Z'),
    event.severity,
    safe(event.kind),
    safe(
      event.nodeId
        ? (names.get(event.nodeId) ?? (typeof event.data.name === 'string' ? event.data.name : event.nodeId))
        : '-',
    ),
    safe(event.actor),
    safe(detail(event)),
  ];
}

function line(event: EventEnvelope, names: Map<string, string>): string {
  return row(event, names).join('  ');
}

/** A short, readable summary of an event's data. */
export function detail(event: EventEnvelope): string {
  const data = event.data;
  const parts: string[] = [];
  if (typeof data.text === 'string') parts.push(data.text);
  if (typeof data.tag === 'string') parts.push(`#${data.tag}`);
  if (typeof data.ref === 'number') parts.push(`(re #${data.ref})`);
  if (typeof data.from === 'string' && typeof data.to === 'string') {
    // A status change: what changed, and the first reason for it.
    parts.push(`${data.from} → ${data.to}`);
    if (Array.isArray(data.reasons) && typeof data.reasons[0] === 'string')
      parts.push(`(${data.reasons[0]})`);
  }
  if (parts.length === 0) {
    for (const [key, value] of Object.entries(data)) {
      if (key === 'subject' || value === null || typeof value === 'object') continue;
      parts.push(`${key}=${String(value)}`);
    }
  }
  const text = parts.join(' ').replace(/\s+/g, ' ');
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function readFilters(values: Record<string, unknown>): Filters {
  const filters: Filters = {};
  const kind = values.kind as string | undefined;
  if (kind !== undefined)
    filters.kinds = kind
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
  if (values.node !== undefined) filters.node = values.node as string;
  const since = values.since as string | undefined;
  if (since !== undefined) {
    const ms = parseDuration(since);
    const at =
      ms !== undefined ? Date.now() - ms : /^\d{4}-\d{2}-\d{2}T/.test(since) ? Date.parse(since) : NaN;
    if (Number.isNaN(at)) {
      throw new UsageError(`--since: "${since}" is neither a duration such as 1h nor an RFC 3339 time`);
    }
    filters.since = new Date(at).toISOString();
  }
  return filters;
}

function readLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(`--limit: "${text}" is not a positive whole number`);
  return Number(text);
}

/** The newest `limit` events that match, newest first, paging as needed. */
async function fetchHistory(client: AdminClient, filters: Filters, limit: number): Promise<EventEnvelope[]> {
  const items: EventEnvelope[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams();
    if (filters.kinds && filters.kinds.length > 0) query.set('kind', filters.kinds.join(','));
    if (filters.node) query.set('node', filters.node);
    if (filters.since) query.set('since', filters.since);
    query.set('limit', String(Math.min(MAX_PAGE, limit - items.length)));
    if (cursor) query.set('cursor', cursor);
    const page: EventList = await client.call<EventList>('GET', `/v1/events?${query}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < limit);
  return items;
}

/** Node ids to names, so events read in the fleet's own words; best effort. */
async function nodeNames(client: AdminClient): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  try {
    const list = await client.call<{ items: Array<{ id: string; name: string }> }>(
      'GET',
      '/v1/nodes?limit=1000',
    );
    for (const node of list.items) names.set(node.id, node.name);
  } catch (err) {
    if (err instanceof ConnectionError) throw err;
  }
  return names;
}

/**
 * Follows the live stream until `signal` aborts, reconnecting with full-jitter backoff and
 * resuming after the last id seen. A gap (history lost to retention) is said on stderr.
 */
export async function followStream(
  client: AdminClient,
  path: string,
  after: number,
  signal: AbortSignal,
  onEvent: (event: EventEnvelope) => void,
): Promise<void> {
  let lastId = after;
  let failures = 0;
  let interrupted = false;
  while (!signal.aborted) {
    try {
      const res = await client.stream(path, { 'last-event-id': String(lastId) }, signal);
      if (res.statusCode !== 200) {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 400 && status < 500) throw new ServerError(status, undefined);
        throw new Error(`the event stream answered ${status}`);
      }
      failures = 0;
      if (interrupted) console.error('the event stream is back; nothing was missed');
      interrupted = false;
      const parser = new SseParser();
      res.setEncoding('utf8');
      await new Promise<void>((resolve) => {
        res.on('data', (chunk: string) => {
          for (const frame of parser.push(chunk)) {
            if (frame.id !== undefined && /^\d+$/.test(frame.id)) lastId = Number(frame.id);
            if (frame.event === 'gap') {
              const gap = JSON.parse(frame.data) as EventGap;
              console.error(
                `history lost to retention: events ${gap.lostFrom} to ${gap.lostThrough} are gone`,
              );
              continue;
            }
            let event: EventEnvelope;
            try {
              event = JSON.parse(frame.data) as EventEnvelope;
            } catch {
              continue; // not an event this version understands
            }
            onEvent(event);
          }
        });
        res.on('close', () => resolve());
        res.on('error', () => resolve());
      });
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ServerError) throw err;
      failures++;
    }
    if (signal.aborted) return;
    if (!interrupted) console.error('the event stream was interrupted; reconnecting');
    interrupted = true;
    // Full jitter, from 0.5 s up to 15 s after repeated failures.
    const cap = Math.min(15_000, 500 * 2 ** Math.min(failures, 5));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.random() * cap);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
}
