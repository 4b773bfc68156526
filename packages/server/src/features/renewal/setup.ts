import type { Core, Feature } from '../feature.js';
import { renewalRoutes } from './routes.js';
import { RenewalService } from './service.js';

/** Certificate renewal by enrolled nodes, limited per node (`--renew-rate` a minute). */
export function setupRenewal(
  deps: Pick<Core, 'config' | 'write' | 'clock' | 'ids' | 'decisions' | 'roots' | 'rateLimits'>,
) {
  const { config, clock } = deps;
  const renewal = new RenewalService({
    write: deps.write,
    clock,
    ids: deps.ids,
    decisions: deps.decisions,
    roots: deps.roots,
    certLifetimeMs: config.certLifetimeMs,
  });
  const limiter = deps.rateLimits('renew', config.renewRate / 60, config.renewRate);
  return { agentRoutes: (scope) => renewalRoutes(scope, renewal, limiter) } satisfies Feature;
}
