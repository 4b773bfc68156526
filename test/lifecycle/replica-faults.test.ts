import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CommandView,
  FINAL_TARGET_STATES,
  type NodeView,
  type Policy,
  type TokenCreated,
} from '@muster/proto';
import { command, dataDirRoot, makeOperator, signedPolicy } from '../support/commands.js';
import { agentArgsFromJoinLine, isHealthy } from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// CONTRACT section 6, under fire: two replicas on one PostgreSQL, real agents that know both,
// a token loop and a ledger storm on both replicas, a signed command in flight, then kill -9.
// Whatever a replica acknowledged must survive it, and its agents must come back through the
// other within 30 s (the contract's bound, held as the deadline of the poll).
const RECOVERY_MS = 30_000;
const AGENTS = 4;

type Api = (path: string, init?: { method?: string; body?: unknown }) => Promise<Response>;

function apiOf(server: ServerUnderTest): Api {
  const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
  return (path, init = {}) =>
    fetch(`${server.adminUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
}

async function channelsHeld(api: Api): Promise<number> {
  const text = await (await api('/metrics')).text();
  return Number(/^muster_channels_held (\d+)$/m.exec(text)?.[1] ?? 0);
}

/** Token creations and operator notes against one replica until `stop()`; each is a ledger append. */
function storm(api: Api) {
  const acknowledged: string[] = [];
  let notes = 0;
  let stopped = false;
  const loop = async (make: () => Promise<void>) => {
    while (!stopped) {
      try {
        await make();
      } catch {
        return; // the replica died under us: what it did not answer it did not promise
      }
    }
  };
  const workers = [
    ...Array.from({ length: 2 }, () =>
      loop(async () => {
        const res = await api('/v1/tokens', { method: 'POST', body: {} });
        if (res.status === 201) acknowledged.push(((await res.json()) as TokenCreated).id);
        else await res.body?.cancel();
      }),
    ),
    loop(async () => {
      const res = await api('/v1/events', { method: 'POST', body: { kind: 'note', text: 'storm' } });
      if (res.status === 201) notes++;
      await res.body?.cancel();
    }),
  ];
  return {
    acknowledged,
    notes: () => notes,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

const portOf = (url: string) => `127.0.0.1:${new URL(url).port}`;

if (!process.env.MUSTER_TEST_PG_URL) {
  console.log('# replica-faults: skipped, it needs PostgreSQL (set MUSTER_TEST_PG_URL)');
} else {
  describe('kill -9 a replica under load: nothing acknowledged is lost (postgres)', () => {
    const sandbox = new Sandbox();
    const dir = sandbox.tempDir('actions');
    const marksFile = join(dir, 'marks');
    const alice = makeOperator('alice');
    let db: string;
    const servers: ServerUnderTest[] = [];
    const agents: Array<{ name: string; process: MusterProcess; dataDir: string }> = [];

    before(async () => {
      db = await sandbox.postgresDatabase();
      servers.push(await sandbox.startServer({ db }));
      servers.push(await sandbox.startServer({ db, dataDir: servers[0]!.dataDir }));
      const root = dataDirRoot(servers[0]!.dataDir);
      // One action: it writes the agent's pid (one per node here) and the command's tag, then
      // stays busy for 2 s so that the kill lands while it runs.
      const policy: Policy = {
        version: 1,
        operators: [{ name: alice.name, publicKey: alice.publicKey, profiles: ['web'] }],
        profiles: {
          web: {
            actions: {
              mark: {
                argv: ['/bin/sh', '-c', `echo "$PPID $1" >> ${marksFile}; sleep 2`, 'sh', '{tag}'],
                args: { tag: { pattern: '[a-z0-9-]+' } },
                timeoutSec: 10,
                maxOutputBytes: 1024,
              },
            },
          },
        },
      };
      const pushed = await apiOf(servers[0]!)('/v1/policy', {
        method: 'POST',
        body: signedPolicy(policy, root.privateKey),
      });
      assert.equal(pushed.status, 201, await pushed.text());
      const joins = await Promise.all(
        Array.from({ length: AGENTS }, async (_, i) => {
          const res = await apiOf(servers[i % 2]!)('/v1/tokens', {
            method: 'POST',
            body: { name: `fault-${i}`, profile: 'web' },
          });
          assert.equal(res.status, 201);
          return (await res.json()) as TokenCreated;
        }),
      );
      joins.forEach((join_, i) => {
        // Half list A first and half B first, so each replica holds agents when it is killed.
        const [first, second] = i % 2 === 0 ? servers : [servers[1]!, servers[0]!];
        const dataDir = sandbox.tempDir(`agent-${i}`);
        const args = agentArgsFromJoinLine(join_.agentCommand, first!.agentUrl);
        agents.push({
          name: `fault-${i}`,
          dataDir,
          process: sandbox.spawn([...args, '--server', second!.agentUrl, '--data-dir', dataDir]),
        });
      });
      await waitFor('every agent to report, half through each replica', async () => {
        const held = await Promise.all(servers.map((s) => channelsHeld(apiOf(s))));
        return held[0] === AGENTS / 2 && held[1] === AGENTS / 2 ? true : undefined;
      });
      // Every agent runs a command before the faults, so each holds the policy.
      const warm = command(alice, { profile: 'web' }, 'mark', { tag: 'warm' });
      assert.equal((await apiOf(servers[1]!)('/v1/commands', { method: 'POST', body: warm })).status, 202);
      await answeredEverywhere(apiOf(servers[1]!), warm.command.id);
    });
    after(() => sandbox.cleanup());

    /** Polls until every target of the command has a final answer; returns the view. */
    async function answeredEverywhere(api: Api, id: string, timeoutMs = RECOVERY_MS): Promise<CommandView> {
      return waitFor(
        `command ${id} to be answered by every node`,
        async () => {
          const view = (await (await api(`/v1/commands/${id}`)).json()) as CommandView;
          return view.targets?.length === AGENTS &&
            view.targets.every((t) => FINAL_TARGET_STATES.includes(t.state))
            ? view
            : undefined;
        },
        { timeoutMs },
      );
    }

    /** How many times each node started the command: its journal, and the marks its action left. */
    function runsPerNode(id: string, tag: string) {
      return agents.map((a) => {
        const journal = readFileSync(join(a.dataDir, 'commands', 'journal.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { t: string; id: string });
        const marks = readFileSync(marksFile, 'utf8')
          .split('\n')
          .filter((l) => l === `${a.process.pid} ${tag}`).length;
        return { name: a.name, started: journal.filter((l) => l.t === 'start' && l.id === id).length, marks };
      });
    }

    async function killOne(victimIndex: 0 | 1, tag: string): Promise<void> {
      const victim = servers[victimIndex]!;
      const survivor = servers[1 - victimIndex]!;
      const storms = servers.map((s) => storm(apiOf(s)));
      await waitFor('both replicas to acknowledge tokens under the storm', async () =>
        storms.every((s) => s.acknowledged.length >= 20 && s.notes() >= 5) ? true : undefined,
      );
      // The command goes in through the replica about to die, to every node, just before it dies.
      const inFlight = command(alice, { profile: 'web' }, 'mark', { tag });
      const issued = await apiOf(victim)('/v1/commands', { method: 'POST', body: inFlight });
      assert.equal(issued.status, 202, await issued.text());
      await victim.process.stop('SIGKILL');
      const killedAt = Date.now();
      const victimAcked = storms[victimIndex]!.acknowledged.length;

      const survivorApi = apiOf(survivor);
      await waitFor(
        `every agent to report ok through the survivor within ${RECOVERY_MS / 1000} s`,
        async () => {
          if ((await channelsHeld(survivorApi)) !== AGENTS) return undefined;
          const nodes = ((await (await survivorApi('/v1/nodes')).json()) as { items: NodeView[] }).items;
          const back = nodes.filter(
            (n) => n.lastSeenAt !== null && Date.parse(n.lastSeenAt) > killedAt && isHealthy(n),
          );
          return back.length === AGENTS ? true : undefined;
        },
        { timeoutMs: RECOVERY_MS, intervalMs: 250 },
      );
      console.log(
        `# every agent back through the survivor ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill; ` +
          `${victimAcked} tokens acknowledged by the victim before it died`,
      );
      const view = await answeredEverywhere(survivorApi, inFlight.command.id);
      await Promise.all(storms.map((s) => s.stop()));

      // At most once per node, by the node's own journal and by what the action left behind.
      for (const run of runsPerNode(inFlight.command.id, tag)) {
        assert.ok(run.started <= 1, `${run.name} started the command ${run.started} times`);
        assert.ok(run.marks <= 1, `${run.name} ran the action ${run.marks} times`);
        assert.ok(run.marks <= run.started, `${run.name} ran it without journalling it first`);
      }
      for (const t of view.targets!)
        assert.ok(['succeeded', 'interrupted'].includes(t.state), `${t.name}: ${JSON.stringify(t)}`);

      // Every token either replica acknowledged is there, read through the survivor.
      const tokens = ((await (await survivorApi('/v1/tokens')).json()) as { items: Array<{ id: string }> })
        .items;
      const stored = new Set(tokens.map((t) => t.id));
      const acknowledged = storms.flatMap((s) => s.acknowledged);
      for (const id of acknowledged) assert.ok(stored.has(id), `acknowledged token ${id} is stored`);

      // And the ledger, appended to by both replicas until one died, verifies from an export.
      const vkey = ((await (await survivorApi('/v1/ledger/key')).json()) as { vkey: string }).vkey;
      const exportFile = join(sandbox.tempDir('export'), 'ledger.jsonl');
      const exported = await sandbox.run(['ledger', 'export', '--out', exportFile, ...survivor.adminFlags]);
      assert.equal(exported.code, 0, describeResult(exported));
      const verified = await sandbox.run(['ledger', 'verify', '--export', exportFile, '--key', vkey]);
      assert.equal(verified.code, 0, describeResult(verified));
      assert.match(verified.stdout, /^verified: \d+ entries/);
      const created = new Set(
        readFileSync(exportFile, 'utf8')
          .trimEnd()
          .split('\n')
          .slice(1)
          .map((l) => JSON.parse(l) as { kind: string; subject: string })
          .filter((e) => e.kind === 'token.created')
          .map((e) => e.subject),
      );
      for (const id of acknowledged) assert.ok(created.has(`token:${id}`), `token ${id} is in the ledger`);
    }

    test('kill -9 replica A: its agents come back through B, nothing acknowledged is lost', async () => {
      await killOne(0, 'first');
    });

    test('A restarted, kill -9 replica B: every agent comes back through A', async () => {
      const killed = servers[0]!;
      servers[0] = await sandbox.startServer({
        db,
        dataDir: killed.dataDir,
        listen: portOf(killed.agentUrl),
        adminListen: portOf(killed.adminUrl),
      });
      await killOne(1, 'second');
      for (const a of agents) assert.ok(a.process.running, `${a.name} kept running throughout`);
    });
  });
}
