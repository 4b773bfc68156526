import secureJson from 'secure-json-parse';
import { BadRequestError } from '../errors.js';

/** Deeper than any Muster document; a bound so hostile nesting costs nothing to refuse. */
export const MAX_JSON_DEPTH = 32;
export const MAX_BODY_BYTES = 1024 * 1024;

/** Finds how deeply a JSON text nests, without parsing it; strings are skipped. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/**
 * Parses a request body: bounded nesting, and `__proto__` / `constructor.prototype` keys are
 * dropped so they can never reach an object's prototype.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new BadRequestError('request body is empty; expected JSON', 'malformed_json');
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
    throw new BadRequestError(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`, 'malformed_json');
  }
  try {
    return secureJson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' });
  } catch {
    throw new BadRequestError('request body is not valid JSON', 'malformed_json');
  }
}
