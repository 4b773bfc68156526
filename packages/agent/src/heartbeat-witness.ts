import { type Log, requestJson } from '@muster/host';
import type { StoredIdentity } from './identity.js';
import type { Renewer } from './renewer.js';
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
  /** Whichever identity the agent holds now: its connection and, signing, its request headers. */
  renewer: Pick<Renewer, 'tls' | 'headers'>,
  signal: AbortSignal,
  log: Log,
): Witness | undefined {
  if (!start.ledgerKey) return undefined;
  return new Witness(
    dataDir,
    start.ledgerKey,
    async (from, to) => {
      const proofUrl = new URL(`/v1/agent/ledger/consistency?from=${from}&to=${to}`, servers.current());
      const headers = renewer.headers('GET', proofUrl);
      return (
        await requestJson<{ hashes: string[] }>(proofUrl, {
          method: 'GET',
          headers,
          agent: renewer.tls,
          signal,
        })
      ).body.hashes;
    },
    log,
  );
}
