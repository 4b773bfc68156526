import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { SocketIdentityDeps } from '../../http/auth.js';
import { SignedRequestVerifier } from '../../http/signatures.js';
import { TrustedProxies } from '../../http/trusted-proxies.js';
import type { Schema } from '../../store/schema.js';
import type { ProxiedSettings } from './config.js';
import { StoredNonces } from './nonces.js';
import { ProxiedPlane } from './plane.js';

export { ProxiedPlane } from './plane.js';

export interface SignedPlaneDeps {
  config: ProxiedSettings;
  db: Kysely<Schema>;
  clock: Clock;
  logger: Logger;
  agent: FastifyInstance;
  identity: SocketIdentityDeps;
}

/** The `--proxied-listen` plane when configured, else undefined: nothing changes for mTLS agents. */
export function signedPlane(deps: SignedPlaneDeps): (ProxiedPlane & { relay: EventEmitter }) | undefined {
  const { config, db, clock, logger, agent, identity } = deps;
  if (!config.proxiedListen) return undefined;
  const proxies = new TrustedProxies(config.trustedProxies ?? []);
  const verifier = new SignedRequestVerifier({
    ...identity,
    certificateBySerial: async (serial) => {
      const row = await db
        .selectFrom('nodes')
        .select(['cert_serial', 'cert_pem', 'pending_serial', 'pending_pem'])
        .where((eb) => eb.or([eb('cert_serial', '=', serial), eb('pending_serial', '=', serial)]))
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      if (!row) return undefined;
      return row.cert_serial === serial ? row.cert_pem : (row.pending_pem ?? undefined);
    },
    nonces: new StoredNonces(db, clock),
    proxies,
    logger,
  });
  const relay = new EventEmitter();
  const plane = new ProxiedPlane({
    verifier,
    proxies,
    routing: (req, res) => agent.routing(req, res),
    channelRelay: relay,
    connections: identity.connections,
    logger,
  });
  return Object.assign(plane, { relay });
}
