import {
  type Command,
  type CommandSignature,
  commandSignatureValid,
  findOperator,
  operatorMayRunOn,
  type Policy,
  type RoleSpec,
  roleAllowsSome,
  type TargetCandidate,
  type Verb,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import { AppError, BadRequestError, ForbiddenError } from '../../errors.js';
import type { Principal } from '../../identity.js';
import type { Schema } from '../../store/schema.js';
import { parseRole } from '../access/people.js';
import { outsideScope } from '../access/scope.js';

/** One operator's signature on a command, checked against the policy, with the user whose key it is. */
export interface Signer extends CommandSignature {
  publicKey: string;
  /** Null when the key belongs to no user (registered before keys did): it acts for the sender. */
  user: string | null;
}

/**
 * Checks one signature as every agent will: the operator is in the policy, may run commands on
 * every target's profile, and signed these exact bytes. Refusals are what the operator reads.
 */
export function checkSignature(
  policy: Policy,
  command: Command,
  signature: CommandSignature,
  targets: readonly TargetCandidate[],
): Omit<Signer, 'user'> {
  const operator = findOperator(policy, signature.operator);
  if (!operator)
    throw new ForbiddenError(`operator ${signature.operator} is not in the policy`, 'unknown_operator');
  for (const profile of new Set(targets.map((t) => t.profile)))
    if (!operatorMayRunOn(operator, profile))
      throw new AppError(
        403,
        'refused_operator',
        `operator ${signature.operator} may not run commands on profile ${profile}`,
      );
  if (!commandSignatureValid(command, signature.signature, operator.publicKey))
    throw new BadRequestError(
      `the signature does not verify with operator ${signature.operator}'s key`,
      'bad_signature',
    );
  return { ...signature, publicKey: operator.publicKey };
}

/** Refuses a signer whose key, or whose user, has signed already: dual control means distinct people. */
export function refuseRepeat(
  signer: Signer,
  earlier: readonly Signer[],
  error: (message: string) => AppError,
): void {
  const byKey = earlier.find((s) => s.publicKey === signer.publicKey);
  if (byKey)
    throw error(
      byKey.operator === signer.operator
        ? `operator ${signer.operator} has signed this command already; one operator counts once`
        : `operator ${signer.operator} has the same key as operator ${byKey.operator}, who signed already; one key counts once`,
    );
  const byUser = signer.user === null ? undefined : earlier.find((s) => s.user === signer.user);
  if (byUser)
    throw error(
      `user ${signer.user} has signed this command already (as operator ${byUser.operator}); each approval must be another person's`,
    );
}

/**
 * The user each operator's key belongs to: the one it was registered for (`operator add
 * --user`), else the user of the same name. A key with neither belongs to no user.
 */
export async function usersOf(
  db: Kysely<Schema>,
  operators: readonly string[],
): Promise<Map<string, string>> {
  const names = [...new Set(operators)];
  const found = new Map<string, string>();
  if (names.length === 0) return found;
  const [registered, sameName] = await Promise.all([
    db.selectFrom('operators').select(['name', 'user']).where('name', 'in', names).execute(),
    db.selectFrom('users').select('name').where('name', 'in', names).execute(),
  ]);
  for (const row of sameName) found.set(row.name, row.name);
  for (const row of registered) if (row.user !== null) found.set(row.name, row.user);
  return found;
}

/**
 * Why the signer's user may not `verb` commands (or jobs) on these targets (a sentence naming
 * role, verb and resource), or undefined when they may. A key that belongs to no user acts for
 * the principal sending it, whose role the guard has checked already.
 */
export async function signerRefusal(
  db: Kysely<Schema>,
  signer: Signer,
  verb: Verb,
  targets: readonly TargetCandidate[],
  resource: 'commands' | 'jobs' = 'commands',
): Promise<string | undefined> {
  if (signer.user === null) return undefined;
  const whose = `operator ${signer.operator}'s key belongs to user ${signer.user}`;
  const row = await db
    .selectFrom('users as u')
    .leftJoin('roles as r', 'r.name', 'u.role')
    .select(['u.role', 'u.disabled_at', 'r.spec'])
    .where('u.name', '=', signer.user)
    .executeTakeFirst();
  if (!row) return `${whose}, who does not exist`;
  if (row.disabled_at !== null) return `${whose}, who is disabled`;
  const role: RoleSpec = parseRole(row.role, row.spec);
  if (!roleAllowsSome(role, verb, resource)) return `${whose}: role ${role.name} may not ${verb} ${resource}`;
  const principal: Principal = { user: signer.user, credential: 'operator-key', roles: [role] };
  const outside = outsideScope(principal, verb, resource, targets);
  return outside ? `${whose}: ${outside}` : undefined;
}
