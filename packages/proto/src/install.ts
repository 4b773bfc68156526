import { type Static, Type } from '@sinclair/typebox';

/**
 * The packaged agent as the control plane serves it (`npm run package`, CONTRACT section 11),
 * and the one-line installer `muster token create --install` prints for it.
 */

const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** One packaged file: its name under /v1/install/files/, its SHA-256 and its size in bytes. */
export const PackagedFile = Type.Object({
  name: Type.String({ maxLength: 128 }),
  sha256: Sha256Hex,
  size: Type.Integer({ minimum: 0 }),
});
export type PackagedFile = Static<typeof PackagedFile>;

/** `GET /v1/install/manifest` on the agent plane: what `npm run package` wrote, as built. */
export const InstallManifest = Type.Object({
  version: Type.String({ maxLength: 64 }),
  /** The Node the executable embeds. */
  node: Type.String({ maxLength: 64 }),
  files: Type.Array(PackagedFile),
});
export type InstallManifest = Static<typeof InstallManifest>;

/** `GET /v1/install` on the admin plane: what an installer line is made of. */
export const InstallInfo = Type.Object({
  /** The agent-plane URL join lines carry. */
  url: Type.String(),
  /** SHA-256 of `/v1/install/ca.pem` exactly as served: the fleet CA behind the server's certificate. */
  caCertSha256: Sha256Hex,
  /** The join line's `--ca-pin` (SHA-256 of that CA's public key), which the agent checks itself. */
  caPin: Type.String(),
  /** The join line's `--root-pin`. */
  rootPin: Type.String(),
  manifest: InstallManifest,
});
export type InstallInfo = Static<typeof InstallInfo>;

/** What the installer can fetch and start, by the name `--install-agent` takes. */
export const INSTALL_AGENTS = {
  /** The single executable application: needs nothing on the host. */
  executable: 'muster-agent',
  /** The single-file bundle: needs Node >= 20 on the host. */
  bundle: 'muster-agent.cjs',
} as const;
export type InstallAgent = keyof typeof INSTALL_AGENTS;

/** The directory, under the one the line is pasted in, that the installer fills. */
export const INSTALL_DIR = 'muster-agent';

// Everything put into the line: URLs, pins, names. Nothing here can end the single quotes or
// make the shell expand anything; a value with any other character is refused, not escaped.
const SAFE_WORD = /^[A-Za-z0-9._:/[\]-]+$/;

function safeWord(what: string, value: string): string {
  if (!SAFE_WORD.test(value)) throw new Error(`${what} "${value}" cannot go into an installer line`);
  return value;
}

/**
 * The one-line installer. The token goes in through `printf`, a shell builtin, so no process
 * ever has it in its argv. The line itself trusts nothing from the server until the server's
 * CA certificate hashes to the value the line carries; everything after that (the script, the
 * agent) comes over TLS that trusts only that CA, and the script checks the agent's SHA-256
 * against the manifest before it runs it.
 */
export function installLine(opts: {
  info: Pick<InstallInfo, 'url' | 'caCertSha256' | 'caPin' | 'rootPin'>;
  secret: string;
  agent: InstallAgent;
  name?: string;
}): string {
  const { info } = opts;
  const server = safeWord('the server URL', info.url);
  const base = `${server}/v1/install`;
  const sum = safeWord('the CA hash', info.caCertSha256);
  const agentFlags = [
    `--server "${server}"`,
    `--ca-pin ${safeWord('the CA pin', info.caPin)}`,
    `--root-pin ${safeWord('the root pin', info.rootPin)}`,
    ...(opts.name ? [`--name ${safeWord('the node name', opts.name)}`] : []),
  ].join(' ');
  const d = INSTALL_DIR;
  const script = [
    'set -eu',
    `u=${base}`,
    `d=${d}`,
    'mkdir -p -m 700 "$d"',
    // -k for this one request only: the certificate is not trusted until its hash is checked.
    // -q first: no ~/.curlrc may add options.
    'curl -qfsSgk -o "$d/ca.pem" "$u/ca.pem"',
    `echo "${sum}  $d/ca.pem" | sha256sum -c --status || { rm -f "$d/ca.pem"; echo "muster install: the server at $u does not present the fleet CA this line pins (sha256 ${sum}); refusing it, nothing else was fetched" >&2; exit 1; }`,
    // --capath: Debian's curl adds /etc/ssl/certs to --cacert; a directory with no hashed
    // certificate names in it leaves the fleet CA the only one trusted.
    'curl -qfsSg --cacert "$d/ca.pem" --capath "$d" -o "$d/install.sh" "$u/install.sh" || { rm -f "$d/install.sh"; echo "muster install: could not fetch install.sh from $u over TLS that trusts only the fleet CA" >&2; exit 1; }',
    `exec sh "$d/install.sh" "$u" ${opts.agent} ${agentFlags}`,
  ].join('; ');
  return `printf '%s' '${safeWord('the token', opts.secret)}' | sh -c '${script}'`;
}
