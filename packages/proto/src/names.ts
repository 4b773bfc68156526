/** Node names are DNS labels: they become a certificate CN and appear in URLs and logs. */
export const NODE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const NODE_NAME_RE = new RegExp(NODE_NAME_PATTERN);

/** True when `name` is an acceptable node name (CONTRACT section 4). */
export function isNodeName(name: unknown): name is string {
  return typeof name === 'string' && NODE_NAME_RE.test(name);
}

/** Profiles and label keys share a conservative shape so they read the same in the CLI, URLs and SQL. */
export const PROFILE_PATTERN = '^[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?$';
export const LABEL_KEY_PATTERN = '^[a-z0-9]([a-z0-9_./-]{0,62}[a-z0-9])?$';
export const LABEL_VALUE_PATTERN = '^[A-Za-z0-9_.:/-]{0,128}$';
const PROFILE_RE = new RegExp(PROFILE_PATTERN);
const LABEL_KEY_RE = new RegExp(LABEL_KEY_PATTERN);
const LABEL_VALUE_RE = new RegExp(LABEL_VALUE_PATTERN);
export const MAX_LABELS = 32;

export function isProfile(value: unknown): value is string {
  return typeof value === 'string' && PROFILE_RE.test(value);
}

/**
 * Parses `k=v` pairs as given on a command line into a label map.
 * Throws an Error naming the first bad pair.
 */
export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = Object.create(null);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`label "${pair}" is not of the form key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!LABEL_KEY_RE.test(key)) throw new Error(`label key "${key}" must match ${LABEL_KEY_PATTERN}`);
    if (!LABEL_VALUE_RE.test(value))
      throw new Error(`label value "${value}" must match ${LABEL_VALUE_PATTERN}`);
    labels[key] = value;
  }
  if (Object.keys(labels).length > MAX_LABELS) throw new Error(`at most ${MAX_LABELS} labels are allowed`);
  return { ...labels };
}
