import {
  type CommandSignature,
  findOperator,
  type Job,
  jobSignatureValid,
  operatorMayRunOn,
  type Policy,
  type TargetCandidate,
  type Verb,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import { AppError, BadRequestError, ForbiddenError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import { type Signer, signerRefusal } from '../commands/signers.js';

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
export function jobSignerRefusal(
  db: Kysely<Schema>,
  signer: Signer,
  verb: Verb,
  nodes: readonly TargetCandidate[],
): Promise<string | undefined> {
  return signerRefusal(db, signer, verb, nodes, 'jobs');
}
