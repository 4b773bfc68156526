import { keyFingerprint } from '@muster/proto';
import type { Core, Feature } from '../feature.js';
import { tokenRoutes } from './routes.js';
import { TokenService } from './service.js';

/** Enrollment tokens and the join lines that carry them. */
export function setupTokens(
  deps: Pick<Core, 'store' | 'write' | 'clock' | 'ids' | 'decisions' | 'identity' | 'roots' | 'joinUrl'>,
) {
  const tokens = new TokenService({
    db: deps.store.db,
    write: deps.write,
    clock: deps.clock,
    ids: deps.ids,
    decisions: deps.decisions,
    caPin: () => deps.roots.presented().pin,
    rootPin: keyFingerprint(deps.identity.fleetRoot.publicKey),
    publicUrl: () => deps.joinUrl(),
  });
  return { tokens, adminRoutes: (scope) => tokenRoutes(scope, tokens) } satisfies Feature & {
    tokens: TokenService;
  };
}
