import { BadRequestError } from '../errors.js';

/**
 * The one page-cursor codec every listing uses: a cursor is the base64url of the JSON of a
 * position (`["name","id"]` for nodes, `[at,"id"]` for commands, `{"before":n}` for events), so
 * cursors handed out before this module existed still decode. Clients treat them as opaque.
 */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/**
 * Decodes a cursor and reads its position with `read` (undefined: not this listing's shape).
 * Only the exact text this server would hand out is accepted (no padding, no re-spelt JSON), and
 * every bad cursor gets the same one answer, whatever was wrong with it.
 */
export function decodeCursor<T>(cursor: string, read: (value: unknown) => T | undefined): T {
  let position: T | undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (encodeCursor(value) === cursor) position = read(value);
  } catch {
    // Not base64url JSON: the same answer as any other bad cursor, below.
  }
  if (position === undefined)
    throw new BadRequestError('cursor is not one this server handed out', 'bad_cursor');
  return position;
}
