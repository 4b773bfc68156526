import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SignedCommand } from '@muster/proto';
import { ManualClock } from '../../clock.js';
import type { Decision } from '../../decisions/recorder.js';
import { openStore, type Store } from '../../store/db.js';
import { createPgDatabase, type Dialect, dialects } from '../../testing/harness.js';
import { CommandTracker } from './tracking.js';

// Two replicas that both read a target as pending (each holds a channel the node once had, or
// one sends on issue while the other's sweep runs) both carry the command and both say so. The
// row moves once; the ledger must say it once.

const clock = new ManualClock(Date.now());

function pendingCommand(id: string): SignedCommand {
  const at = new Date(clock.now()).toISOString();
  return {
    command: {
      v: 1,
      id,
      nonce: `nonce-${id}`,
      issuedAt: at,
      expiresAt: new Date(clock.now() + 60_000).toISOString(),
      operator: 'ops',
      target: { nodes: ['n1', 'n2'] },
      action: 'noop',
      args: {},
    },
    signature: 'unused',
  };
}

for (const dialect of dialects() as Dialect[]) {
  describe(`delivery is recorded once per node, however often it is carried (${dialect})`, () => {
    let dir: string;
    let drop: (() => Promise<void>) | undefined;
    let stores: Store[];
    const decisions: Decision[] = [];
    let replicas: CommandTracker[];

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'muster-tracking-'));
      let url = `sqlite:${join(dir, 'muster.db')}`;
      if (dialect === 'postgres') {
        const pg = await createPgDatabase();
        url = pg.url;
        drop = pg.drop;
      }
      stores = [await openStore(url), await openStore(url)];
      replicas = stores.map(
        (store) =>
          new CommandTracker({
            db: store.db,
            write: (fn) => store.write(fn),
            clock,
            decisions: { record: async (_trx, decision) => void decisions.push(decision) },
            events: { append: async () => 0 },
          }),
      );
    });
    after(async () => {
      for (const store of stores ?? []) await store.close();
      await drop?.();
      await rm(dir, { recursive: true, force: true });
    });

    async function issue(id: string, nodes: string[]): Promise<void> {
      const signed = pendingCommand(id);
      await stores[0]!.write(async (trx) => {
        await trx
          .insertInto('commands')
          .values({
            id,
            nonce: signed.command.nonce,
            operator: 'ops',
            action: 'noop',
            signed: JSON.stringify(signed),
            issued_at: clock.now(),
            expires_at: clock.now() + 60_000,
            created_at: clock.now(),
          })
          .execute();
        await trx
          .insertInto('command_targets')
          .values(
            nodes.map((node_id) => ({
              command_id: id,
              node_id,
              state: 'pending',
              reason: null,
              receipt: null,
              expires_at: clock.now() + 60_000,
              updated_at: clock.now(),
            })),
          )
          .execute();
      });
    }
    const delivered = (id: string) =>
      decisions.filter((d) => d.kind === 'command.delivered' && d.subject === `command:${id}`);

    test('two replicas that both read it pending and both carried it give one ledger entry', async () => {
      await issue('c-twice', ['n1']);
      const [onA, onB] = await Promise.all(replicas.map((r) => r.pendingFor(['n1'])));
      assert.equal(onA!.length, 1);
      assert.equal(onB!.length, 1, 'both replicas saw it pending');
      await replicas[0]!.delivered(onA!);
      await replicas[1]!.delivered(onB!);
      // And a re-sent delivery from the same replica later changes nothing either.
      await replicas[0]!.delivered(onA!);
      assert.deepEqual(
        delivered('c-twice').map((d) => d.data),
        [{ nodes: ['n1'], count: 1 }],
      );
      const [row] = await stores[1]!.db
        .selectFrom('command_targets')
        .selectAll()
        .where('command_id', '=', 'c-twice')
        .execute();
      assert.equal(row!.state, 'delivered');
    });

    test('a delivery to one node already recorded and one new names only the new one', async () => {
      await issue('c-partial', ['n1', 'n2']);
      const both = await replicas[0]!.pendingFor(['n1', 'n2']);
      await replicas[1]!.delivered(both.filter((d) => d.nodeId === 'n1'));
      await replicas[0]!.delivered(both);
      assert.deepEqual(
        delivered('c-partial').map((d) => d.data),
        [
          { nodes: ['n1'], count: 1 },
          { nodes: ['n2'], count: 1 },
        ],
      );
    });
  });
}
