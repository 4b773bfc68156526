/**
 * A unified diff of two texts, line by line, for showing what an edit changes (`policy edit`).
 * Longest common subsequence over lines: policies are a few hundred lines, so the quadratic
 * table is small; past MAX_CELLS it falls back to showing the texts as replaced whole.
 */

const MAX_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; line: string };

function lineOps(a: readonly string[], b: readonly string[]): Op[] {
  if (a.length * b.length > MAX_CELLS)
    return [
      ...a.map((line) => ({ kind: '-' as const, line })),
      ...b.map((line) => ({ kind: '+' as const, line })),
    ];
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i++]! });
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // On a tie the removal goes first: a changed line reads as - then +.
      ops.push({ kind: '-', line: a[i++]! });
    } else ops.push({ kind: '+', line: b[j++]! });
  }
  return ops;
}

/**
 * `--- a` / `+++ b` headers, then hunks of changed lines with `context` unchanged lines around
 * them, as `diff -u` prints; the empty string when the texts are the same.
 */
export function unifiedDiff(before: string, after: string, names: [string, string], context = 3): string {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  const ops = lineOps(before === '' ? [] : a, after === '' ? [] : b);
  if (ops.every((op) => op.kind === ' ')) return '';
  const out = [`--- ${names[0]}`, `+++ ${names[1]}`];
  // Positions of each op in the old and new text, for the hunk headers.
  const at: Array<[number, number]> = [];
  let oldLine = 1;
  let newLine = 1;
  for (const op of ops) {
    at.push([oldLine, newLine]);
    if (op.kind !== '+') oldLine++;
    if (op.kind !== '-') newLine++;
  }
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    const start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within 2×context unchanged lines.
    for (let gap = 0; end < ops.length; end++) {
      if (ops[end]!.kind === ' ') {
        if (++gap > 2 * context) break;
      } else gap = 0;
    }
    end = Math.min(ops.length, trimContext(ops, end, context));
    const hunk = ops.slice(start, end);
    const oldCount = hunk.filter((op) => op.kind !== '+').length;
    const newCount = hunk.filter((op) => op.kind !== '-').length;
    const [oldStart, newStart] = at[start]!;
    out.push(
      `@@ -${oldCount === 0 ? oldStart - 1 : oldStart},${oldCount} +${newCount === 0 ? newStart - 1 : newStart},${newCount} @@`,
    );
    for (const op of hunk) out.push(`${op.kind}${op.line}`);
    k = end;
  }
  return `${out.join('\n')}\n`;
}

/** Where a hunk ends: `context` unchanged lines after its last change. */
function trimContext(ops: readonly Op[], end: number, context: number): number {
  let last = end - 1;
  while (last >= 0 && ops[last]!.kind === ' ') last--;
  return last + 1 + context;
}
