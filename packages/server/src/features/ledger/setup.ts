import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { Core, Feature } from '../feature.js';
import { ledgerAgentRoutes, ledgerRoutes } from './routes.js';
import { LedgerService } from './service.js';

/** The transparency ledger: its log signed with the server's ledger key, checkpoints on a timer. */
export function setupLedger(deps: Pick<Core, 'config' | 'store' | 'clock' | 'identity' | 'logger'>) {
  const { config, store, clock, logger } = deps;
  const key = createPrivateKey(deps.identity.ledgerKeyPem);
  const ledger = new LedgerService({
    db: store.db,
    clock,
    origin: `${config.trustDomain}/muster-ledger`,
    privateKey: key,
    publicKey: createPublicKey(key),
  });
  return {
    ledger,
    agentRoutes: (scope) => ledgerAgentRoutes(scope, ledger),
    adminRoutes: (scope) => ledgerRoutes(scope, ledger),
    start(signal) {
      ledger.startCheckpointer(config.checkpointIntervalMs, signal, (err) =>
        logger.warn({ err }, 'could not sign a ledger checkpoint'),
      );
    },
  } satisfies Feature & { ledger: LedgerService };
}
