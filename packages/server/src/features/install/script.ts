import { INSTALL_AGENTS, type InstallAgent, type InstallManifest } from '@muster/proto';

/**
 * `GET /v1/install/install.sh`: the script the one-line installer runs once the server's CA
 * matched the hash the line carries. It came over TLS that trusts only that CA, and so do the
 * SHA-256 sums written into it from the build's manifest; it checks the agent it fetches
 * against them before it runs anything, writes the join token to a 0600 file, and starts the
 * agent in the foreground with `--token-file`, so the token is in no process's argv.
 *
 * POSIX sh (Debian's dash), curl and coreutils' sha256sum: what a bare Linux host has. Every
 * value written into it comes from a manifest whose names, versions and sums were checked.
 */
export function installScript(manifest: InstallManifest): string {
  const listed = (agent: InstallAgent) => manifest.files.find((f) => f.name === INSTALL_AGENTS[agent]);
  const exe = listed('executable');
  const bundle = listed('bundle');
  return `${[
    '#!/bin/sh',
    `# The Muster agent ${manifest.version} installer, as the one-line installer of`,
    '# "muster token create --install" runs it: fetched from the control plane over TLS that',
    '# trusts only the fleet CA the line pinned. It fetches the agent the same way, checks its',
    "# SHA-256 against the build's manifest (below) before it runs anything, writes the join",
    '# token from stdin to a 0600 file, and starts the agent with --token-file.',
    '#',
    '#   printf %s TOKEN | sh install.sh URL executable|bundle AGENT-FLAGS...',
    'set -eu',
    `say() { printf 'muster install: %s\\n' "$*" >&2; }`,
    'fail() { say "$*"; exit 1; }',
    `[ "$#" -ge 2 ] || fail 'usage: printf %s TOKEN | sh install.sh URL executable|bundle AGENT-FLAGS...'`,
    'url=$1',
    'kind=$2',
    'shift 2',
    'dir=$(cd "$(dirname "$0")" && pwd -P)',
    'case $kind in',
    `  executable) file=${INSTALL_AGENTS.executable}; sum=${exe?.sha256 ?? ''}; size=${exe?.size ?? 0} ;;`,
    `  bundle) file=${INSTALL_AGENTS.bundle}; sum=${bundle?.sha256 ?? ''}; size=${bundle?.size ?? 0} ;;`,
    '  *) fail "unknown agent \\"$kind\\": expected executable or bundle" ;;',
    'esac',
    '[ -n "$sum" ] || fail "this server has no $file in its agent package; make the line with the other --install-agent"',
    'if [ "$kind" = bundle ]; then',
    "  command -v node >/dev/null 2>&1 || fail 'the bundle needs Node 20 or later, and this host has no node on PATH: install Node, or make the line with --install-agent executable'",
    `  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||`,
    '    fail "the bundle needs Node 20 or later, and this host has node $(node --version); make the line with --install-agent executable"',
    'fi',
    "[ ! -t 0 ] || fail 'no join token on stdin: paste the whole line that muster token create --install printed'",
    'token=$(cat)',
    '[ -n "$token" ] || fail \'no join token on stdin: paste the whole line that muster token create --install printed\'',
    'part=$dir/$file.part',
    'rm -f "$part"',
    'say "fetching $file ($size bytes) from $url"',
    // The fleet CA alone: --capath replaces the system's certificates curl would add to it.
    'curl -qfsSg --cacert "$dir/ca.pem" --capath "$dir" -o "$part" "$url/files/$file" || { rm -f "$part"; fail "could not fetch $url/files/$file"; }',
    'got=$(sha256sum "$part" | cut -d " " -f 1)',
    'if [ "$got" != "$sum" ]; then',
    '  rm -f "$part"',
    '  fail "$file from $url has SHA-256 $got, but the manifest says $sum: refusing to run it; nothing was installed or started"',
    'fi',
    'chmod 0755 "$part"',
    'mv -f "$part" "$dir/$file"',
    'umask 077',
    'mkdir -p "$dir/state"',
    'chmod 0700 "$dir/state"',
    `printf '%s' "$token" > "$dir/join-token.part"`,
    'mv -f "$dir/join-token.part" "$dir/join-token"',
    // Spent once the node holds its identity (or the agent stopped): removed then, by a watcher
    // handed to init so that it is nobody's zombie.
    'agent=$$',
    '( ( while kill -0 "$agent" 2>/dev/null && [ ! -e "$dir/state/identity.json" ]; do sleep 1; done',
    '    rm -f "$dir/join-token" ) </dev/null >/dev/null 2>&1 & )',
    'case $kind in',
    '  executable) set -- "$dir/$file" "$@"; start="$dir/$file" ;;',
    '  bundle) set -- node "$dir/$file" "$@"; start="node $dir/$file" ;;',
    'esac',
    'say "$file verified (SHA-256 $sum); starting the agent, its identity in $dir/state"',
    'say "to start it again once enrolled: $start --data-dir $dir/state"',
    'exec "$@" --token-file "$dir/join-token" --data-dir "$dir/state"',
  ].join('\n')}\n`;
}
