import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '@muster/host';
import { Policy, policyProblems } from '@muster/proto';
import { Value } from '@sinclair/typebox/value';

export const KEY_SETTING = {
  flag: 'key',
  kind: 'string',
  value: 'FILE',
  help: 'the fleet root private key (default <data-dir>/root.key)',
} as const;

/** Reads a policy file: a bare policy or a signed one; checks it against the schema and itself. */
export function readPolicyFile(path: string): { policy: Policy; signature?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(resolve(path), 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code ? `cannot read ${path} (${code})` : `${path} is not JSON: ${(err as Error).message}`,
    );
  }
  const signed = parsed as { policy?: unknown; signature?: unknown };
  const policy = signed && typeof signed === 'object' && 'policy' in signed ? signed.policy : parsed;
  if (!Value.Check(Policy, policy)) {
    const first = [...Value.Errors(Policy, policy)][0];
    throw new UsageError(
      `${path}: the policy${first ? ` at ${first.path || '/'}: ${first.message}` : ' is malformed'}`,
    );
  }
  const problems = policyProblems(policy);
  if (problems.length > 0) throw new UsageError(`${path}: ${problems.join('; ')}`);
  return { policy, ...(typeof signed.signature === 'string' ? { signature: signed.signature } : {}) };
}

export function rootKeyFile(values: Record<string, unknown>): string {
  return (
    (values.key as string | undefined) ??
    join(resolve((values['data-dir'] as string | undefined) ?? '.muster'), 'root.key')
  );
}
