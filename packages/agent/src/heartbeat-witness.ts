import { type Log, requestJson } from '@muster/host';
import type { DialingAgent } from './dial.js';
import type { StoredIdentity } from './identity.js';
import type { ServerList } from './servers.js';
import { Witness } from './witness.js';

/**
 * The ledger witness for a node enrolled with the fleet's ledger key (none otherwise): it asks
 * for consistency proofs over whichever server and identity the agent holds at the time.
 */
export function ledgerWitness(
  start: StoredIdentity,
  dataDir: string,
  servers: ServerList,
  tls: () => DialingAgent,
  signal: AbortSignal,
  log: Log,
): Witness | undefined {
  if (!start.ledgerKey) return undefined;
  return new Witness(
    dataDir,
    start.ledgerKey,
    async (from, to) => {
      const proofUrl = new URL(`/v1/agent/ledger/consistency?from=${from}&to=${to}`, servers.current());
      return (await requestJson<{ hashes: string[] }>(proofUrl, { method: 'GET', agent: tls(), signal })).body
        .hashes;
    },
    log,
  );
}
