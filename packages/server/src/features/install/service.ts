import { createHash } from 'node:crypto';
import type { InstallInfo, InstallManifest } from '@muster/proto';
import type { FleetRoots } from '../../pki/fleet.js';
import type { AgentPackage } from './package.js';
import { installScript } from './script.js';

export interface InstallServiceDeps {
  package: AgentPackage;
  roots: Pick<FleetRoots, 'presented'>;
  /** The agent-plane URL join lines carry. */
  publicUrl: () => string;
  /** `sha256:…` of the fleet root key, as join lines carry it in `--root-pin`. */
  rootPin: string;
}

/** What a new host fetches to install the agent, and what the installer line that fetches it carries. */
export class InstallService {
  constructor(private readonly deps: InstallServiceDeps) {}

  manifest(): InstallManifest {
    return this.deps.package.manifest();
  }

  /**
   * The CA behind the server's certificate, the one join lines pin, as PEM in Node's own
   * layout: every replica serves the same bytes for the same CA, whatever its file looks like,
   * so one hash in the installer line fits them all.
   */
  caPem(): string {
    return this.deps.roots.presented().certificate.toString();
  }

  script(): string {
    return installScript(this.manifest());
  }

  file(name: string) {
    return this.deps.package.file(name);
  }

  /** For `muster token create --install`; refused (404) while there is no package to install. */
  info(): InstallInfo {
    const manifest = this.manifest();
    const ca = this.deps.roots.presented();
    return {
      url: this.deps.publicUrl(),
      caCertSha256: createHash('sha256').update(this.caPem()).digest('hex'),
      caPin: ca.pin,
      rootPin: this.deps.rootPin,
      manifest,
    };
  }
}
