import {
  checkJobShard,
  type JobShardDelivery,
  type JobShardNode,
  type Policy,
  ShardRefused,
  type Verifier,
  verifyConsistency,
} from '@muster/proto';
import type { Witness } from '../witness.js';

/** What the agent decided about one shard: the argv to run, or the `rejected` receipt's reason. */
export type ShardDecision = { run: true; argv: string[] } | { run: false; reason: string };

/**
 * The agent's gate for job shards (CONTRACT section 9): everything `checkJobShard` checks, and
 * then that the checkpoint the entry proves into is consistent with the one this agent holds —
 * the witness's own view of the log, so a control plane cannot show one node a log the others
 * never saw. A newer checkpoint is witnessed (held, or kept as evidence); an older one must be a
 * prefix of the one held.
 */
export class JobShardGate {
  constructor(
    private readonly deps: {
      node: JobShardNode;
      verifier: Verifier;
      witness: Pick<Witness, 'held' | 'observe' | 'check'>;
      fetchConsistency(from: number, to: number): Promise<string[]>;
      skewAllowanceMs: number;
      now(): number;
    },
  ) {}

  async decide(delivery: JobShardDelivery, policy: Policy): Promise<ShardDecision> {
    const { deps } = this;
    let checked: ReturnType<typeof checkJobShard>;
    try {
      checked = checkJobShard(delivery, {
        node: deps.node,
        policy,
        verifier: deps.verifier,
        now: deps.now(),
        skewAllowanceMs: deps.skewAllowanceMs,
      });
    } catch (err) {
      if (err instanceof ShardRefused) return { run: false, reason: err.message };
      throw err;
    }
    const offered = checked.checkpoint;
    const held = await deps.witness.held();
    if (held && offered.size < held.size) {
      const proof = (await deps.fetchConsistency(offered.size, held.size)).map((h) =>
        Buffer.from(h, 'base64'),
      );
      return verifyConsistency(offered.size, held.size, proof, offered.root, held.root)
        ? { run: true, argv: checked.argv }
        : {
            run: false,
            reason: `checkpoint ${offered.size} is not consistent with checkpoint ${held.size} this node holds`,
          };
    }
    await deps.witness.observe(delivery.checkpoint);
    const now = await deps.witness.held();
    const witnessed =
      (await deps.witness.check()).ok && now?.size === offered.size && now.root.equals(offered.root);
    return witnessed
      ? { run: true, argv: checked.argv }
      : {
          run: false,
          reason: `checkpoint ${offered.size} is not consistent with checkpoint ${held?.size ?? 0} this node holds`,
        };
  }
}
