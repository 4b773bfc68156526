import { createHash, createPrivateKey } from 'node:crypto';
import type { Log } from '@muster/host';
import {
  authorize,
  CommandRefused,
  checkApprovals,
  checkTiming,
  commandSignatureValid,
  findOperator,
  isTargeted,
  type Receipt,
  type SignedCommand,
  SignedCommand as SignedCommandSchema,
  signaturesOf,
  signReceipt,
  type TargetCandidate,
  type UnsignedReceipt,
} from '@muster/proto';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Execution, execute } from './executor.js';
import { CommandJournal } from './journal.js';
import { HeldPolicy } from './policy.js';

if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && Number.isFinite(Date.parse(v)));

/** Commands issued this far in the future are refused (CONTRACT section 5). */
export const COMMAND_SKEW_ALLOWANCE_MS = 5 * 60_000;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** An unacknowledged receipt is sent again after this long. */
const RESEND_MS = 15_000;

export interface RunnerDeps {
  dataDir: string;
  /** The fleet root key pinned at enrollment. */
  rootKey: string;
  /** Who this node is now (the key changes at a rekeyed renewal). */
  self(): TargetCandidate & { keyPem: string };
  /** Sends a message up the channel; false when none is open. */
  send(message: { type: 'running'; commandId: string } | { type: 'receipt'; receipt: Receipt }): boolean;
  /** The HTTP fallback for a receipt; resolves once the server stored it. */
  postReceipt(receipt: Receipt): Promise<void>;
  log: Log;
  /** The host's own clock: command times are checked against it, never against the server's. */
  now?: () => number;
  signal: AbortSignal;
}

/**
 * Runs the commands operators signed, after checking everything again on this host: the
 * signature, the operator and the allowlist in the root-signed policy, the timing, that this
 * node is a target, and that it never saw the nonce. Answers each with a receipt signed by
 * the node's own key, and keeps it until the server says it is stored.
 */
export class CommandRunner {
  private readonly lastSent = new Map<string, number>();
  /** Commands being checked or run now: a second delivery of one must not slip past the journal. */
  private readonly inHand = new Set<string>();

  private constructor(
    private readonly deps: RunnerDeps,
    private readonly journal: CommandJournal,
    readonly policy: HeldPolicy,
  ) {}

  static async start(deps: RunnerDeps): Promise<CommandRunner> {
    const now = deps.now ?? Date.now;
    const runner = new CommandRunner(
      deps,
      await CommandJournal.open(deps.dataDir, now()),
      await HeldPolicy.load(deps.dataDir, deps.rootKey),
    );
    // Commands that were running when the agent stopped are answered, never run again.
    for (const entry of runner.journal.unfinished()) {
      deps.log.warn('a command was running when the agent stopped; answering it as interrupted', {
        commandId: entry.id,
      });
      await runner.finish(entry.id, {
        status: 'interrupted',
        reason: 'the agent restarted while the command ran; it was not run again',
        exitCode: null,
        startedAt: entry.startedAt,
        finishedAt: new Date(now()).toISOString(),
        stdoutTail: '',
        stderrTail: '',
        outputSha256: EMPTY_SHA256,
      });
    }
    return runner;
  }

  /** A policy came down: taken only if the root signed it and it is newer. */
  async offerPolicy(signed: unknown): Promise<void> {
    const refused = await this.policy.offer(signed);
    if (refused)
      this.deps.log.warn('refused a command policy; keeping the one held', {
        reason: refused,
        held: this.policy.version,
      });
    else this.deps.log.debug('holding command policy', { version: this.policy.version });
  }

  /** A command came down (channel or HTTP). Resolves once it is answered or ignored. */
  async handle(candidate: unknown): Promise<void> {
    if (!Value.Check(SignedCommandSchema, candidate)) {
      this.deps.log.warn('ignored a malformed command');
      return;
    }
    const { command } = candidate;
    if (this.inHand.has(command.id) || this.inHand.has(command.nonce)) {
      this.deps.log.warn('refused a command this node already received', { commandId: command.id });
      return;
    }
    this.inHand.add(command.id);
    this.inHand.add(command.nonce);
    try {
      await this.handleOnce(candidate);
    } finally {
      this.inHand.delete(command.id);
      this.inHand.delete(command.nonce);
    }
  }

  private async handleOnce(candidate: SignedCommand): Promise<void> {
    const { command } = candidate;
    const seen = this.journal.seen(command.id, command.nonce);
    if (seen) {
      // Delivered again (a reconnect) or replayed: never run twice; answer with what happened.
      this.deps.log.warn('refused a command this node already received', { commandId: command.id });
      if (seen.receipt && !seen.acked) this.sendReceipt(seen.receipt);
      return;
    }
    const now = (this.deps.now ?? Date.now)();
    const journalStart = () =>
      this.journal.start({
        id: command.id,
        nonce: command.nonce,
        expiresAt: Date.parse(command.expiresAt),
        startedAt: new Date(now).toISOString(),
      });
    let argv: string[];
    let spec: { timeoutSec: number; maxOutputBytes: number };
    try {
      ({ argv, spec } = this.check(candidate, now));
    } catch (err) {
      if (!(err instanceof CommandRefused)) throw err;
      this.deps.log.warn('refused a command', { commandId: command.id, reason: err.message });
      // Only a command its operator really signed burns its nonce; a forgery is just dropped.
      // One short of approvals does not burn it either: the same command may yet come with them.
      if (['signature', 'operator', 'target', 'approvals'].includes(err.code)) {
        await this.answer(command.id, refusal(err.message, now));
        return;
      }
      await journalStart();
      await this.finish(command.id, refusal(err.message, now));
      return;
    }
    // On disk before it runs: after a crash this command is answered, never run again.
    await journalStart();
    this.deps.send({ type: 'running', commandId: command.id });
    this.deps.log.info('running a command', {
      commandId: command.id,
      action: command.action,
      operator: command.operator,
    });
    const result = await execute(argv, {
      timeoutMs: spec.timeoutSec * 1000,
      maxOutputBytes: spec.maxOutputBytes,
      signal: this.deps.signal,
    });
    // Stopping mid-command: the next start answers it as interrupted.
    if (result.status === 'interrupted') return;
    await this.finish(command.id, result);
    this.deps.log.info('command finished', {
      commandId: command.id,
      status: result.status,
      exitCode: result.exitCode,
    });
  }

  /** The server stored this receipt. */
  async acked(commandId: string): Promise<void> {
    this.lastSent.delete(commandId);
    await this.journal.acked(commandId);
  }

  /** Sends receipts the server has not acknowledged yet (after a reconnect, say). */
  resend(): void {
    const now = Date.now();
    for (const entry of this.journal.unacked())
      if (now - (this.lastSent.get(entry.id) ?? 0) >= RESEND_MS) this.sendReceipt(entry.receipt!);
  }

  private check(signed: SignedCommand, now: number) {
    const { command } = signed;
    const policy = this.policy.current?.policy;
    if (!policy) throw new CommandRefused('this node holds no command policy yet', 'policy');
    const operator = findOperator(policy, command.operator);
    if (!operator) throw new CommandRefused(`operator ${command.operator} is not in the policy`, 'operator');
    const signatures = signaturesOf(signed);
    const own = signatures.find((s) => s.operator === command.operator);
    if (!own || !commandSignatureValid(command, own.signature, operator.publicKey))
      throw new CommandRefused(
        `the signature does not verify with operator ${command.operator}'s key`,
        'signature',
      );
    const self = this.deps.self();
    if (!isTargeted(command.target, self))
      throw new CommandRefused('this node is not a target of the command', 'target');
    checkTiming(command, now, COMMAND_SKEW_ALLOWANCE_MS);
    const argv = authorize(policy, command, self.profile);
    // Counted here, against this node's own policy copy: no relay can make up an approval.
    checkApprovals(policy, command, signatures, self.profile);
    return { argv, spec: policy.profiles[self.profile]!.actions[command.action]! };
  }

  /** Signs and keeps a receipt, then sends it. */
  private async finish(commandId: string, result: Execution | ReturnType<typeof refusal>): Promise<void> {
    const receipt = this.sign(commandId, result);
    await this.journal.done(commandId, receipt);
    this.sendReceipt(receipt);
  }

  /** A receipt for a command this node will not journal (not its own, or not genuine). */
  private async answer(commandId: string, result: ReturnType<typeof refusal>): Promise<void> {
    this.sendReceipt(this.sign(commandId, result));
  }

  private sign(commandId: string, result: Execution | ReturnType<typeof refusal>): Receipt {
    const self = this.deps.self();
    const unsigned: UnsignedReceipt = {
      commandId,
      nodeId: self.id,
      status: result.status as Receipt['status'],
      ...(result.reason ? { reason: result.reason.slice(0, 1024) } : {}),
      exitCode: result.exitCode,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      stdoutTail: result.stdoutTail,
      stderrTail: result.stderrTail,
      outputSha256: result.outputSha256,
    };
    return { ...unsigned, signature: signReceipt(unsigned, createPrivateKey(self.keyPem)) };
  }

  private sendReceipt(receipt: Receipt): void {
    this.lastSent.set(receipt.commandId, Date.now());
    if (this.deps.send({ type: 'receipt', receipt })) return;
    this.deps.postReceipt(receipt).then(
      () => this.acked(receipt.commandId),
      (err) =>
        this.deps.log.warn('could not send a receipt; retrying later', {
          commandId: receipt.commandId,
          error: (err as Error).message,
        }),
    );
  }
}

function refusal(reason: string, now: number) {
  const at = new Date(now).toISOString();
  return {
    status: 'rejected' as const,
    reason,
    exitCode: null,
    startedAt: at,
    finishedAt: at,
    stdoutTail: '',
    stderrTail: '',
    outputSha256: EMPTY_SHA256,
  };
}
