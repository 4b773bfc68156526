import {
  type CommandSignature,
  findOperator,
  type Job,
  jobSignatureValid,
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
import type { Signer } from '../commands/signers.js';

/**
 * A job's signatures are checked as a command's are (features/commands/signers.ts), over the
 * job's own signing context, and a signer's user must be allowed jobs, not commands.
 */
export function checkJobSignature(
  policy: Policy,
  job: Job,
  signature: CommandSignature,
  profiles: readonly string[],
): Omit<Signer, 'user'> {
  const operator = findOperator(policy, signature.operator);
  if (!operator)
    throw new ForbiddenError(`operator ${signature.operator} is not in the policy`, 'unknown_operator');
  for (const profile of profiles)
    if (!operatorMayRunOn(operator, profile))
      throw new AppError(
        403,
        'refused_operator',
        `operator ${signature.operator} may not run commands on profile ${profile}`,
      );
  if (!jobSignatureValid(job, signature.signature, operator.publicKey))
    throw new BadRequestError(
      `the job's signature does not verify with operator ${signature.operator}'s key`,
      'bad_signature',
    );
  return { ...signature, publicKey: operator.publicKey };
}

/** Why the signer's user may not `verb` jobs on these nodes, or undefined when they may. */
export async function jobSignerRefusal(
  db: Kysely<Schema>,
  signer: Signer,
  verb: Verb,
  nodes: readonly TargetCandidate[],
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
  if (!roleAllowsSome(role, verb, 'jobs')) return `${whose}: role ${role.name} may not ${verb} jobs`;
  const principal: Principal = { user: signer.user, credential: 'operator-key', roles: [role] };
  const outside = outsideScope(principal, verb, 'jobs', nodes);
  return outside ? `${whose}: ${outside}` : undefined;
}
