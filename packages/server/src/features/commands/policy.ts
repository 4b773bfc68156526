import {
  keyFingerprint,
  type OperatorCreateRequest,
  type OperatorView,
  type PolicyState,
  policyProblems,
  policySignatureValid,
  type SignedPolicy,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, ConflictError, UnprocessableError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { Notifications } from '../../store/notifications.js';
import type { Schema } from '../../store/schema.js';

/** Told, after a push commits, to every replica: each sends the new policy down the channels it holds. */
export const POLICY_CHANNEL = 'muster_policy';

export interface PolicyServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  /** The fleet root public key (`ed25519:…`): the only key a policy may be signed with. */
  fleetRoot: string;
  /** Where replicas share a database: tells the others a newer policy is in force. */
  notifications?: Notifications;
  /** Called after a newer policy is committed, so channels held here get it at once. */
  onPushed?(signed: SignedPolicy): void;
}

/**
 * The command policy and the operators it may list. The server only keeps and relays a
 * policy the fleet root signed; it checks commands against it, and so does every agent.
 */
export class PolicyService {
  private cached: { version: number; signed: SignedPolicy } | null | undefined;

  constructor(private readonly deps: PolicyServiceDeps) {}

  /** The policy in force, read from the store (other replicas may have pushed a newer one). */
  async current(): Promise<SignedPolicy | null> {
    const row = await this.deps.db
      .selectFrom('policies')
      .select(['version', 'document'])
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!row) return null;
    if (this.cached?.version !== Number(row.version))
      this.cached = { version: Number(row.version), signed: JSON.parse(row.document) as SignedPolicy };
    return this.cached.signed;
  }

  /** The version last read from the store, without a query (refreshed by `current()`). */
  knownVersion(): number | undefined {
    return this.cached ? this.cached.version : undefined;
  }

  async state(): Promise<PolicyState> {
    return {
      rootKey: this.deps.fleetRoot,
      rootFingerprint: keyFingerprint(this.deps.fleetRoot),
      current: await this.current(),
    };
  }

  /** Takes a root-signed policy with a higher version than the one in force. */
  async push(signed: SignedPolicy, actor: string): Promise<SignedPolicy> {
    if (!policySignatureValid(signed.policy, signed.signature, this.deps.fleetRoot))
      throw new BadRequestError(
        `the policy is not signed by the fleet root key ${keyFingerprint(this.deps.fleetRoot)}`,
        'bad_signature',
      );
    const problems = policyProblems(signed.policy);
    if (problems.length > 0)
      throw new BadRequestError(`the policy is unusable: ${problems.join('; ')}`, 'bad_policy');
    const { version } = signed.policy;
    await this.deps.write(async (trx) => {
      const held = await trx
        .selectFrom('policies')
        .select('version')
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (held && Number(held.version) >= version)
        throw new ConflictError(
          `policy version ${version} is not newer than version ${held.version} in force`,
          'stale_policy',
        );
      await trx
        .insertInto('policies')
        .values({ version, document: JSON.stringify(signed), created_at: this.deps.clock.now(), actor })
        .execute();
      await this.deps.decisions.record(trx, {
        kind: 'policy.pushed',
        actor,
        subject: `policy:${version}`,
        data: {
          version,
          signature: signed.signature,
          operators: signed.policy.operators.map((op) => ({ name: op.name, publicKey: op.publicKey })),
          profiles: Object.keys(signed.policy.profiles),
        },
      });
      // Agents held by other replicas must not keep the old policy until they reconnect.
      await this.deps.notifications?.notify(trx, POLICY_CHANNEL);
    });
    this.deps.onPushed?.(signed);
    return signed;
  }

  /** Registers an operator's key; it may run commands once a signed policy lists it. */
  async addOperator(input: OperatorCreateRequest, actor: string): Promise<OperatorView> {
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      const held = await trx
        .selectFrom('operators')
        .select('name')
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (held) throw new ConflictError(`operator ${input.name} already exists`, 'operator_exists');
      // The key belongs to the user named, else to the user of the operator's own name, if any.
      const wanted = input.user ?? input.name;
      const user = await trx.selectFrom('users').select('name').where('name', '=', wanted).executeTakeFirst();
      if (!user && input.user !== undefined)
        throw new UnprocessableError(
          `no user named ${input.user}: add them first (muster user add ${input.user} --role operator)`,
          'no_user',
        );
      await trx
        .insertInto('operators')
        .values({
          name: input.name,
          public_key: input.publicKey,
          profiles: JSON.stringify(input.profiles),
          created_at: now,
          user: user?.name ?? null,
        })
        .execute();
      await this.deps.decisions.record(trx, {
        kind: 'operator.added',
        actor,
        subject: `operator:${input.name}`,
        data: { publicKey: input.publicKey, profiles: input.profiles, user: user?.name ?? null },
      });
    });
    return (await this.operators()).find((op) => op.name === input.name)!;
  }

  async operators(): Promise<OperatorView[]> {
    const [rows, policy] = await Promise.all([
      this.deps.db.selectFrom('operators').selectAll().orderBy('name').execute(),
      this.current(),
    ]);
    return rows.map((row) => ({
      name: row.name,
      publicKey: row.public_key,
      profiles: JSON.parse(row.profiles) as string[],
      createdAt: new Date(Number(row.created_at)).toISOString(),
      user: row.user,
      inPolicy:
        policy?.policy.operators.some((op) => op.name === row.name && op.publicKey === row.public_key) ??
        false,
    }));
  }
}
