import type {
  ActionSpec,
  Command,
  CommandSignature,
  CommandTarget,
  Policy,
  PolicyOperator,
} from './commands.js';
import { DEFAULT_ARG_MAX_LENGTH, MAX_COMMAND_LIFETIME_MS } from './commands.js';
import { formatDuration } from './duration.js';
import { commandSignatureValid } from './signatures.js';

/**
 * The checks a command must pass against a root-signed policy. The server runs them before it
 * accepts a command and every agent runs them again before it runs one: the server is a relay,
 * not a trust anchor.
 */

/** A refusal an operator can act on: the sentence goes back to them (or into a receipt). */
export class CommandRefused extends Error {
  constructor(
    message: string,
    /** Stable word for the kind of refusal, e.g. `operator`, `action`, `argument`, `expired`. */
    readonly code: string,
  ) {
    super(message);
    this.name = 'CommandRefused';
  }
}

const PLACEHOLDER_RE = /\{([a-z][a-z0-9_]{0,31})\}/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const DOT_DOT_RE = /(^|[/\\])\.\.([/\\]|$)/;
// Anything /bin/sh gives a meaning to, whitespace included.
const SHELL_META_RE = /[\s;&|`$<>(){}[\]*?!~'"\\#=%^]/;

/** Problems that make a policy unusable, in words; empty when it is fine. */
export function policyProblems(policy: Policy): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const op of policy.operators) {
    if (names.has(op.name)) problems.push(`operator ${op.name} is listed twice`);
    names.add(op.name);
  }
  for (const [profile, { actions }] of Object.entries(policy.profiles)) {
    for (const [name, action] of Object.entries(actions)) {
      const where = `action ${name} of profile ${profile}`;
      for (const [arg, constraint] of Object.entries(action.args ?? {})) {
        try {
          new RegExp(constraint.pattern, 'u');
        } catch {
          problems.push(`${where}: the pattern of argument ${arg} is not a regular expression`);
        }
      }
      const required = action.approvals ?? 1;
      const signers = new Set(
        policy.operators.filter((op) => operatorMayRunOn(op, profile)).map((op) => op.publicKey),
      );
      // An action that asks for several operators must be able to get them (one is the usual case).
      if (required > 1 && required > signers.size)
        problems.push(
          `${where} needs ${required} approvals, but only ${signers.size} distinct operator key(s) may run commands on profile ${profile}`,
        );
      for (const element of action.argv)
        for (const [, arg] of element.matchAll(PLACEHOLDER_RE))
          if (!Object.hasOwn(action.args ?? {}, arg!))
            problems.push(`${where}: {${arg}} in argv is not a declared argument`);
    }
  }
  return problems;
}

/** The operator entry for `name`, if the policy lists it. */
export function findOperator(policy: Policy, name: string): PolicyOperator | undefined {
  return policy.operators.find((op) => op.name === name);
}

export function operatorMayRunOn(operator: PolicyOperator, profile: string): boolean {
  return operator.profiles.includes('*') || operator.profiles.includes(profile);
}

/** Refuses a command that is expired, lives too long, or was issued too far in the future. */
export function checkTiming(command: Command, now: number, skewAllowanceMs: number): void {
  const issued = Date.parse(command.issuedAt);
  const expires = Date.parse(command.expiresAt);
  if (!Number.isFinite(issued) || !Number.isFinite(expires))
    throw new CommandRefused('the command carries an unreadable time', 'timing');
  if (expires <= now)
    throw new CommandRefused(`the command expired ${formatDuration(now - expires)} ago`, 'expired');
  if (issued > now + skewAllowanceMs)
    throw new CommandRefused(
      `the command was issued ${formatDuration(issued - now)} in the future, more than the clock skew allowance of ${formatDuration(skewAllowanceMs)}`,
      'not_yet_valid',
    );
  if (expires <= issued) throw new CommandRefused('the command expires before it was issued', 'timing');
  if (expires - issued > MAX_COMMAND_LIFETIME_MS)
    throw new CommandRefused(
      `a command may live ${formatDuration(MAX_COMMAND_LIFETIME_MS)} at most; this one asks for ${formatDuration(expires - issued)}`,
      'timing',
    );
}

/**
 * The argv a node with `profile` runs for `command`, after checking the action is allowed there
 * and every argument meets its constraint. Throws CommandRefused with the reason otherwise.
 */
export function authorize(policy: Policy, command: Command, profile: string): string[] {
  const operator = findOperator(policy, command.operator);
  if (!operator) throw new CommandRefused(`operator ${command.operator} is not in the policy`, 'operator');
  if (!operatorMayRunOn(operator, profile))
    throw new CommandRefused(
      `operator ${command.operator} may not run commands on profile ${profile}`,
      'operator',
    );
  // Own properties only: a profile or action called `constructor` is not Object.prototype's.
  const actions = Object.hasOwn(policy.profiles, profile) ? policy.profiles[profile]!.actions : {};
  const action = Object.hasOwn(actions, command.action) ? actions[command.action] : undefined;
  if (!action)
    throw new CommandRefused(`action ${command.action} is not allowed on profile ${profile}`, 'action');
  checkArguments(command, action);
  return argvFor(action, command.args);
}

function checkArguments(command: Command, action: ActionSpec): void {
  const declared = action.args ?? {};
  for (const name of Object.keys(command.args))
    if (!Object.hasOwn(declared, name))
      throw new CommandRefused(`${name} is not an argument of action ${command.action}`, 'argument');
  for (const [name, constraint] of Object.entries(declared)) {
    // Own properties only: a command without `constructor` must not find Object.prototype's.
    const value = Object.hasOwn(command.args, name) ? command.args[name] : undefined;
    if (value === undefined) throw new CommandRefused(`argument ${name} is missing`, 'argument');
    const max = constraint.maxLength ?? DEFAULT_ARG_MAX_LENGTH;
    if (value.length > max)
      throw new CommandRefused(
        `argument ${name} is too long (${value.length} characters, at most ${max})`,
        'argument',
      );
    if (CONTROL_RE.test(value))
      throw new CommandRefused(`argument ${name} contains a control character`, 'argument');
    if (DOT_DOT_RE.test(value))
      throw new CommandRefused(`argument ${name} contains a ".." path segment`, 'argument');
    if (action.shell && SHELL_META_RE.test(value))
      throw new CommandRefused(
        `argument ${name} contains shell metacharacters and action ${command.action} runs in a shell`,
        'argument',
      );
    if (!new RegExp(`^(?:${constraint.pattern})$`, 'u').test(value))
      throw new CommandRefused(`argument ${name} does not match ${constraint.pattern}`, 'argument');
  }
}

function argvFor(action: ActionSpec, args: Readonly<Record<string, string>>): string[] {
  const argv = action.argv.map((element) =>
    element.replace(PLACEHOLDER_RE, (_, name: string) => (Object.hasOwn(args, name) ? args[name]! : '')),
  );
  return action.shell ? ['/bin/sh', '-c', argv.join(' ')] : argv;
}

/** How many distinct operators must sign `action` for a node of `profile`: 1 unless the policy says. */
export function approvalsRequired(policy: Policy, action: string, profile: string): number {
  const actions = Object.hasOwn(policy.profiles, profile) ? policy.profiles[profile]!.actions : {};
  return (Object.hasOwn(actions, action) ? actions[action]!.approvals : undefined) ?? 1;
}

/**
 * The signatures that count for `command` on a node of `profile`, one per distinct public key:
 * each by an operator the policy lists, allowed on the profile, over these exact bytes. Two
 * signatures by one key (or by one key listed under two names) count once. `ignored` says why
 * each of the others does not count.
 */
export function countedSignatures(
  policy: Policy,
  command: Command,
  signatures: readonly CommandSignature[],
  profile: string,
): { operators: string[]; ignored: string[] } {
  const keys = new Set<string>();
  const operators: string[] = [];
  const ignored: string[] = [];
  for (const { operator: name, signature } of signatures) {
    const operator = findOperator(policy, name);
    if (!operator) ignored.push(`operator ${name} is not in the policy`);
    else if (!operatorMayRunOn(operator, profile))
      ignored.push(`operator ${name} may not run commands on profile ${profile}`);
    else if (!commandSignatureValid(command, signature, operator.publicKey))
      ignored.push(`the signature of operator ${name} does not verify`);
    else if (keys.has(operator.publicKey)) ignored.push(`operator ${name}'s key has signed already`);
    else {
      keys.add(operator.publicKey);
      operators.push(name);
    }
  }
  return { operators, ignored };
}

/**
 * Refuses a command whose action needs more distinct operators' signatures than it carries.
 * An agent runs this against its own policy copy, so no relay can make up an approval.
 */
export function checkApprovals(
  policy: Policy,
  command: Command,
  signatures: readonly CommandSignature[],
  profile: string,
): void {
  const required = approvalsRequired(policy, command.action, profile);
  if (required <= 1) return;
  const { operators, ignored } = countedSignatures(policy, command, signatures, profile);
  if (operators.length >= required) return;
  throw new CommandRefused(
    `action ${command.action} needs the signatures of ${required} distinct operators; ${operators.length} valid (${operators.join(', ') || 'none'})${ignored.length > 0 ? `; ${ignored.join('; ')}` : ''}`,
    'approvals',
  );
}

/** What a node knows about itself when it decides whether a command is addressed to it. */
export interface TargetCandidate {
  id: string;
  name: string;
  profile: string;
  labels: Readonly<Record<string, string>>;
}

export function isTargeted(target: CommandTarget, node: TargetCandidate): boolean {
  if ('all' in target) return target.all === true;
  if ('nodes' in target) return target.nodes.includes(node.id) || target.nodes.includes(node.name);
  if ('profile' in target) return target.profile === node.profile;
  const wanted = Object.entries(target.labels);
  return wanted.length > 0 && wanted.every(([k, v]) => Object.hasOwn(node.labels, k) && node.labels[k] === v);
}
