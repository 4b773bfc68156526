import { keyFingerprint } from '@muster/proto';
import { ENROLL_BURST } from '../enrollment/setup.js';
import type { Core, Feature } from '../feature.js';
import { AgentPackage, defaultPackageDir } from './package.js';
import { installAdminRoutes, installAgentRoutes } from './routes.js';
import { InstallService } from './service.js';

/** The packaged agent for the one-line installer: no client certificate, limited as enrollment is. */
export function setupInstall(
  deps: Pick<Core, 'config' | 'clock' | 'identity' | 'roots' | 'joinUrl' | 'rateLimits'>,
) {
  const { config } = deps;
  const install = new InstallService({
    package: new AgentPackage(config.packageDir ?? defaultPackageDir()),
    roots: deps.roots,
    publicUrl: () => deps.joinUrl(),
    rootPin: keyFingerprint(deps.identity.fleetRoot.publicKey),
  });
  const limiter = deps.rateLimits('install', config.enrollRate, config.enrollRate * ENROLL_BURST);
  return {
    agentPublicRoutes: (scope) => installAgentRoutes(scope, install, limiter),
    adminRoutes: (scope) => installAdminRoutes(scope, install),
  } satisfies Feature;
}
