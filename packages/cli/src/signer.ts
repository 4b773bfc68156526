import { UsageError } from '@muster/host';
import { OPERATOR_NAME_PATTERN, type OperatorView, type PolicyState } from '@muster/proto';
import type { AdminClient } from './client.js';

/**
 * Which operator a key signs for. The key identifies its operator: the policy in force lists each
 * operator with its public key, so the name is looked up rather than asked for. `--operator` is
 * only needed when one key belongs to several operators, and then it is required.
 */
export async function operatorForKey(
  client: AdminClient,
  publicKey: string,
  keyFile: string,
  given: string | undefined,
): Promise<string> {
  if (given !== undefined) {
    const name = given.toLowerCase();
    if (!new RegExp(OPERATOR_NAME_PATTERN).test(name))
      throw new UsageError(`--operator: "${given}" is not an operator name`);
    return name;
  }
  const state = await client.call<PolicyState>('GET', '/v1/policy');
  const listed = (state.current?.policy.operators ?? []).filter((op) => op.publicKey === publicKey);
  const names = [...new Set(listed.map((op) => op.name))].sort();
  if (names.length === 1) return names[0]!;
  if (names.length > 1)
    throw new UsageError(
      `the key ${keyFile} belongs to operators ${names.join(', ')} in the policy; pass --operator NAME to say which`,
    );
  // Not in the policy: say whether it is at least registered, so the next step is clear.
  const { items } = await client.call<{ items: OperatorView[] }>('GET', '/v1/operators');
  const registered = items.filter((op) => op.publicKey === publicKey).map((op) => op.name);
  if (registered.length > 0)
    throw new Error(
      `the key ${keyFile} is registered for ${registered.join(', ')}, but no signed policy lists it yet; run: muster policy edit`,
    );
  throw new Error(
    `the key ${keyFile} (${publicKey}) belongs to no operator in the policy; register it with: muster operator add NAME --pubkey ${keyFile}.pub --profiles …`,
  );
}
