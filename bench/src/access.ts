import { randomBytes, randomUUID } from 'node:crypto';
import { openStore } from '@muster/server';
import { type BenchServer, emit, enroll, makeApplicants, progress, spawnServer } from './support.js';

export interface AccessOptions {
  /** Nodes in the store, spread over 40 teams: one enrolled for real per team, the rest copies of it. */
  nodes: number;
  /** How long each listing is driven. */
  durationMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  db?: string;
}

const TEAMS = 40;
/** The custom role's rules, each narrowed to one team: it sees half the fleet. */
const RULES = 20;
const PAGE = 'limit=100';
const SLICE_MS = 1000;

/**
 * What authorization costs the admin plane: `nodes` real enrollments labelled over 40 teams, a
 * custom role of 20 rules each narrowed to one team (so its listing is filtered by scope and
 * shows half the fleet), then `GET /v1/nodes` pages driven as admin and as that role, in turns
 * of a second, in the same run. Goal: the scoped listing within 1.5x of admin's.
 */
export async function accessScenario(opts: AccessOptions): Promise<void> {
  const server = await spawnServer(['--enroll-rate', '100000'], opts.db);
  try {
    await seedNodes(server, opts.nodes);

    await server.admin('POST', '/v1/roles', {
      name: 'bench-teams',
      allow: Array.from({ length: RULES }, (_, k) => ({
        verbs: ['read'],
        resources: ['nodes', 'events', 'commands'],
        nodes: { labels: { team: `t${k}` } },
      })),
    });
    await server.admin('POST', '/v1/users', { name: 'bench-scoped', role: 'bench-teams' });
    const scoped = await server.admin<{ secret: string }>('POST', '/v1/apitokens', { user: 'bench-scoped' });

    // Warm up both, and check the scope really filters.
    const first = await list(server.adminUrl, scoped.secret, 'limit=1000');
    if (first.items.some((n) => Number(n.labels.team?.slice(1)) >= RULES))
      throw new Error('the scoped listing shows a node outside its role');
    await list(server.adminUrl, server.adminToken, 'limit=1000');

    // In turns of a second each, so that a machine whose load moves meanwhile weighs on both alike.
    progress(`GET /v1/nodes?${PAGE} as admin and as a role of ${RULES} narrowed rules, in turns`);
    const admin = { done: 0, failed: 0, ms: 0 };
    const narrowed = { done: 0, failed: 0, ms: 0 };
    for (let spent = 0; spent < opts.durationMs; spent += SLICE_MS) {
      await drive(server.adminUrl, server.adminToken, opts.concurrency, admin);
      await drive(server.adminUrl, scoped.secret, opts.concurrency, narrowed);
    }
    const rate = (t: { done: number; ms: number }) => (t.done * 1000) / Math.max(1, t.ms);
    const common = {
      nodes: opts.nodes,
      concurrency: opts.concurrency,
      store: opts.db ? 'postgres' : 'sqlite',
    };
    emit('access', 'nodes_page_rps_admin', rate(admin), { ...common, failed: admin.failed });
    emit('access', 'nodes_page_rps_scoped', rate(narrowed), {
      ...common,
      rules: RULES,
      visible: `${RULES}/${TEAMS} of the fleet`,
      failed: narrowed.failed,
    });
    emit('access', 'admin_to_scoped_ratio', rate(admin) / Math.max(0.001, rate(narrowed)), {
      goal: '<= 1.5',
    });
  } finally {
    await server.stop();
  }
}

async function list(
  adminUrl: string,
  secret: string,
  query: string,
): Promise<{ items: Array<{ labels: Record<string, string> }> }> {
  const res = await fetch(`${adminUrl}/v1/nodes?${query}`, {
    headers: { authorization: `Bearer ${secret}` },
  });
  if (res.status !== 200) throw new Error(`GET /v1/nodes: ${res.status} ${await res.text()}`);
  return (await res.json()) as { items: Array<{ labels: Record<string, string> }> };
}

/** `concurrency` loops asking for the first page for one slice, each the moment its last answer came. */
async function drive(
  adminUrl: string,
  secret: string,
  concurrency: number,
  tally: { done: number; failed: number; ms: number },
): Promise<void> {
  const started = performance.now();
  const end = started + SLICE_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const res = await fetch(`${adminUrl}/v1/nodes?${PAGE}`, {
            headers: { authorization: `Bearer ${secret}` },
          });
          await res.arrayBuffer();
          if (res.status === 200) tally.done++;
          else tally.failed++;
        } catch {
          tally.failed++;
        }
      }
    }),
  );
  tally.ms += performance.now() - started;
}

/**
 * One node per team enrolled for real, then the rest copied in the store from those rows (a
 * fresh id, name and serial each): the scenario measures listing, not enrollment, and 10,000
 * real enrollments do not fit a loaded machine's minute. The server reads the store on every
 * listing, so the copies are listed like the originals.
 */
async function seedNodes(server: BenchServer, nodes: number): Promise<void> {
  const perTeam = Math.ceil(nodes / TEAMS);
  const applicants = await makeApplicants(TEAMS, 'ac');
  progress(`enrolling ${TEAMS} nodes, one per team, then copying them to ${nodes} in the store`);
  for (let team = 0; team < TEAMS; team++) {
    const made = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: 1,
      ttlSec: 3600,
      labels: { team: `t${team}`, env: team % 2 === 0 ? 'prod' : 'staging' },
    });
    await enroll(server, made.secret, applicants[team]!);
  }
  const store = await openStore(server.dbUrl);
  try {
    const originals = await store.db.selectFrom('nodes').selectAll().execute();
    const copies: typeof originals = [];
    for (const original of originals)
      for (let k = 1; k < perTeam && originals.length + copies.length < nodes; k++)
        copies.push({
          ...original,
          id: randomUUID(),
          name: `${original.name}-${k}`,
          cert_serial: randomBytes(16).toString('hex'),
        });
    for (let at = 0; at < copies.length; at += 500)
      await store.write((trx) =>
        trx
          .insertInto('nodes')
          .values(copies.slice(at, at + 500))
          .execute(),
      );
  } finally {
    await store.close();
  }
}
