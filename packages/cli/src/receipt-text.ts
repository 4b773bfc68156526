import type { Receipt } from '@muster/proto';

/**
 * A node's output as lines for the terminal. Newlines and tabs are kept so the output reads as it
 * was written; every other control character (escape sequences, carriage returns, bidi marks)
 * becomes `?`, so a hostile command cannot drive the operator's terminal.
 */
export function outputLines(text: string): string[] {
  const clean = text
    .replace(/\r\n/g, '\n')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?')
    .replace(/\n+$/, '');
  return clean === '' ? [] : clean.split('\n');
}

/**
 * stdout and stderr of a receipt, each under its own caption and indented, or nothing when the
 * command wrote neither. With `tail`, only the last `tail` lines of each, saying how many were left out.
 */
export function receiptOutput(
  receipt: Pick<Receipt, 'stdoutTail' | 'stderrTail'>,
  indent: string,
  tail?: number,
): string[] {
  const out: string[] = [];
  for (const [caption, text] of [
    ['stdout', receipt.stdoutTail],
    ['stderr', receipt.stderrTail],
  ] as const) {
    const lines = outputLines(text);
    if (lines.length === 0) continue;
    const shown = tail !== undefined && lines.length > tail ? lines.slice(-tail) : lines;
    const skipped = lines.length - shown.length;
    out.push(`${indent}${caption}${skipped > 0 ? ` (last ${shown.length} of ${lines.length} lines)` : ''}:`);
    for (const line of shown) out.push(`${indent}  ${line}`);
  }
  return out;
}
