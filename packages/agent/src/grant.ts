import { readFile } from 'node:fs/promises';
import { type Log, UsageError, writeFileAtomic } from '@muster/host';
import {
  type EnrollResponse,
  GRANT_FILE_KIND,
  keyFingerprint,
  type NodeRequestBody,
  REQUEST_FILE_KIND,
} from '@muster/proto';
import type { AgentConfig } from './config.js';
import { AgentFatalError } from './enrollment.js';
import { identityPaths, loadIdentity, type StoredIdentity } from './identity.js';
import { pinsIn } from './pinning.js';
import { installEnrolled, requestBody } from './request.js';
import { loadRequestKey, requestKey } from './request-key.js';

/** The file a host with no route to the server hands over: its CSR and what it asks to be. */
export type RequestFile = { kind: typeof REQUEST_FILE_KIND; fingerprint: string } & NodeRequestBody;

/** The file `muster nodes sign` writes: the certificate for that CSR and whom to trust. */
export interface GrantFile {
  kind: typeof GRANT_FILE_KIND;
  server: string;
  fingerprint: string;
  enrolled: EnrollResponse;
}

/** Refuses to ask again for a host that already holds an identity. */
async function refuseEnrolled(config: AgentConfig, what: string): Promise<void> {
  const held = await loadIdentity(config.dataDir);
  if (held)
    throw new AgentFatalError(
      `this host already holds the identity of node ${held.name} in ${config.dataDir}; ${what}`,
    );
}

/**
 * `muster agent request --out FILE`: makes (or reuses) the host's request key in the data dir and
 * writes the request for it. The key stays here; the file holds only the CSR.
 */
export async function writeRequestFile(config: AgentConfig, out: string): Promise<RequestFile> {
  await refuseEnrolled(config, 'it needs no request (start the agent without one)');
  const key = await requestKey(config.dataDir);
  const file: RequestFile = {
    kind: REQUEST_FILE_KIND,
    fingerprint: key.fingerprint,
    ...requestBody(config, key),
  };
  await writeFileAtomic(out, `${JSON.stringify(file, null, 2)}\n`, 0o644);
  return file;
}

/** Reads and checks the shape of a grant file; a file that is not one is a usage error. */
export async function readGrantFile(path: string): Promise<GrantFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--grant: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  let grant: Partial<GrantFile>;
  try {
    grant = JSON.parse(text) as Partial<GrantFile>;
  } catch {
    grant = {};
  }
  const enrolled = grant?.enrolled;
  if (
    grant?.kind !== GRANT_FILE_KIND ||
    typeof grant.server !== 'string' ||
    typeof grant.fingerprint !== 'string' ||
    typeof enrolled?.certificate !== 'string' ||
    typeof enrolled.caBundle !== 'string' ||
    typeof enrolled.trust?.caPin !== 'string'
  )
    throw new UsageError(
      `--grant: ${path} is not a grant file (muster nodes sign FILE --out GRANT writes one)`,
    );
  return grant as GrantFile;
}

/**
 * `muster agent --grant GRANT`: installs the certificate an operator signed for this host's
 * request, after checking it is for the key this host holds. A grant is used once: with an
 * identity installed, or no request key left, it is refused.
 */
export async function installGrant(config: AgentConfig, path: string, log: Log): Promise<StoredIdentity> {
  const grant = await readGrantFile(path);
  await refuseEnrolled(config, 'a grant is used once (start the agent without --grant to run as that node)');
  const key = await loadRequestKey(config.dataDir);
  if (!key)
    throw new AgentFatalError(
      `this host holds no request key in ${config.dataDir}: the grant was already used here, or it was signed for another host's request (make one here with: muster agent request --out FILE)`,
    );
  if (grant.fingerprint !== key.fingerprint)
    throw new AgentFatalError(
      `this grant is for the key ${grant.fingerprint}, but this host's key is ${key.fingerprint}: it was signed for another host's request; refusing it`,
    );
  const { trust } = grant.enrolled;
  if (!pinsIn(grant.enrolled.caBundle).includes(trust.caPin))
    throw new AgentFatalError(
      'the grant names a CA pin that is not in the CA bundle it carries; refusing it',
    );
  if (config.caPin && config.caPin !== trust.caPin)
    throw new AgentFatalError(
      `the grant is from a fleet CA ${trust.caPin}, not the --ca-pin ${config.caPin}`,
    );
  let server: URL;
  try {
    server = config.server ?? new URL(grant.server);
  } catch {
    throw new UsageError(`--grant: ${path} names no usable server URL; give --server`);
  }
  // The grant came through the operator's hands, as a join line does: the fleet root it names is
  // trusted like the line's --root-pin, unless a --root-pin given here says otherwise.
  const rootPin = config.rootPin ?? (trust.fleetRoot ? keyFingerprint(trust.fleetRoot) : undefined);
  const identity = await installEnrolled(
    { ...config, ...(rootPin ? { rootPin } : {}) },
    log,
    grant.enrolled,
    key,
    server,
    trust.caPin,
  );
  log.info('installed the grant', {
    node: identity.name,
    nodeId: identity.nodeId,
    at: identityPaths(config.dataDir).meta,
  });
  return identity;
}
