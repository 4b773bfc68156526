import { emit, enroll, makeApplicants, pool, progress, spawnServer } from './support.js';

export interface AccessOptions {
  /** Nodes in the store, each enrolled for real, spread over 40 teams. */
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
    const perTeam = Math.ceil(opts.nodes / TEAMS);
    const tokens: string[] = [];
    for (let team = 0; team < TEAMS; team++) {
      const made = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
        uses: perTeam,
        ttlSec: 3600,
        labels: { team: `t${team}`, env: team % 2 === 0 ? 'prod' : 'staging' },
      });
      tokens.push(made.secret);
    }
    const applicants = await makeApplicants(opts.nodes, 'ac');
    progress(`enrolling ${opts.nodes} nodes over ${TEAMS} teams`);
    let next = 0;
    const enrolled = await pool(applicants, 200, async (a) => {
      await enroll(server, tokens[Math.floor(next++ / perTeam)]!, a);
    });
    if (enrolled.failed > 0)
      throw new Error(`${enrolled.failed} enrollments failed: ${String(enrolled.firstError)}`);

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
