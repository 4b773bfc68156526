import { createHash, type KeyObject, randomBytes, sign, timingSafeEqual, verify } from 'node:crypto';

/**
 * RFC 9421 HTTP Message Signatures, the subset agents behind a TLS-terminating proxy use
 * (CONTRACT section 12): one signature labelled `muster`, ecdsa-p256-sha256 with the node key,
 * over @method, @authority, @path, @query and content-digest (RFC 9530, sha-256), with created,
 * nonce and keyid (the certificate serial). Both sides build the signature base here, so the
 * agent and the server cannot disagree on a byte of it.
 *
 * Written here rather than taken from `http-message-signatures` (npm): the structured-field
 * subset is small, the base must match byte for byte on both sides, and no dependency is added
 * without the lead. The functions follow that library's split (build the base, sign, verify),
 * so swapping it in later touches only this file.
 */
export const SIGNATURE_LABEL = 'muster';
export const SIGNATURE_ALG = 'ecdsa-p256-sha256';
/** What every agent request must cover; a signature leaving any of them out is refused. */
export const SIGNED_COMPONENTS = ['@method', '@authority', '@path', '@query', 'content-digest'] as const;

/** A signature parameter's value: RFC 8941 integers and strings are all this subset uses. */
export type ParamValue = number | string;

/** An ordered list of covered components and its parameters: one Signature-Input member. */
export interface SignatureInput {
  components: string[];
  params: Array<[string, ParamValue]>;
}

/** The request as the signature sees it: header names lower case. */
export interface SignedMessage {
  method: string;
  /** Host (and port) as the client addressed it. */
  authority: string;
  /** The target URI's path and query, as sent on the request line (`/v1/x?a=b`). */
  target: string;
  headers: Record<string, string | string[] | undefined>;
  /** For responses (RFC 9421 Appendix B.2.4): the status code, for `@status`. */
  status?: number;
}

export class HttpSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpSignatureError';
  }
}

/** RFC 9530 `Content-Digest: sha-256=:…:` of a body. */
export function contentDigest(body: Uint8Array | string): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** True when a Content-Digest header holds a sha-256 member equal to that of `body`. */
export function contentDigestMatches(header: string | undefined, body: Uint8Array): boolean {
  if (!header) return false;
  const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]*):\s*(?:;[^,]*)?(?:,|$)/.exec(header);
  if (!match) return false;
  const sent = Buffer.from(match[1]!, 'base64');
  const actual = createHash('sha256').update(body).digest();
  return sent.length === actual.length && timingSafeEqual(sent, actual);
}

/** RFC 8941 serialization of a string (§4.1.6): quotes and backslashes escaped. */
function sfString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new HttpSignatureError('a parameter holds non-ASCII text');
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The value of `@signature-params`: the inner list and its parameters (RFC 9421 §2.3). */
export function serializeSignatureInput(input: SignatureInput): string {
  const list = `(${input.components.map(sfString).join(' ')})`;
  const params = input.params.map(([k, v]) => `;${k}=${typeof v === 'number' ? String(v) : sfString(v)}`);
  return list + params.join('');
}

function headerValue(message: SignedMessage, name: string): string | undefined {
  const raw = message.headers[name];
  if (raw === undefined) return undefined;
  // §2.1: each field line's value trimmed, several lines joined with ", ".
  return (Array.isArray(raw) ? raw : [raw]).map((v) => v.trim()).join(', ');
}

/** The canonical value of one covered component (RFC 9421 §2.1 and §2.2). */
export function componentValue(message: SignedMessage, id: string): string {
  const q = message.target.indexOf('?');
  const path = q < 0 ? message.target : message.target.slice(0, q);
  switch (id) {
    case '@method':
      return message.method;
    case '@authority':
      return message.authority.toLowerCase().replace(/:443$/, '');
    case '@path':
      return path === '' ? '/' : path;
    case '@query':
      return q < 0 ? '?' : message.target.slice(q);
    case '@status':
      if (message.status === undefined) throw new HttpSignatureError('@status is only for responses');
      return String(message.status);
    default: {
      if (id.startsWith('@') || !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(id))
        throw new HttpSignatureError(`the component ${id} is not supported`);
      const value = headerValue(message, id);
      if (value === undefined) throw new HttpSignatureError(`the covered header ${id} is missing`);
      return value;
    }
  }
}

/** The signature base (RFC 9421 §2.5): one line per component, then @signature-params, no final newline. */
export function signatureBase(message: SignedMessage, input: SignatureInput): string {
  const seen = new Set<string>();
  const lines = input.components.map((id) => {
    if (seen.has(id)) throw new HttpSignatureError(`the component ${id} is covered twice`);
    seen.add(id);
    const value = componentValue(message, id);
    if (/[\r\n]/.test(value)) throw new HttpSignatureError(`the component ${id} holds a line break`);
    return `${sfString(id)}: ${value}`;
  });
  lines.push(`"@signature-params": ${serializeSignatureInput(input)}`);
  return lines.join('\n');
}

/** ECDSA P-256 over SHA-256, the signature as r‖s (RFC 9421 §3.3.4), not DER. */
export function signBase(base: string, key: KeyObject): Buffer {
  return sign('sha256', Buffer.from(base, 'utf8'), { key, dsaEncoding: 'ieee-p1363' });
}

export function verifyBase(base: string, signature: Uint8Array, key: KeyObject): boolean {
  if (signature.length !== 64) return false;
  return verify('sha256', Buffer.from(base, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }, signature);
}

/**
 * The headers that sign a request: Content-Digest of the body, Signature-Input and Signature.
 * `now` is in milliseconds; `created` goes out in whole seconds.
 */
export function signRequest(
  message: Omit<SignedMessage, 'headers'> & { headers?: SignedMessage['headers'] },
  body: Uint8Array | string,
  key: KeyObject,
  keyid: string,
  now: number = Date.now(),
): Record<'content-digest' | 'signature-input' | 'signature', string> {
  const digest = contentDigest(body);
  const input: SignatureInput = {
    components: [...SIGNED_COMPONENTS],
    params: [
      ['created', Math.floor(now / 1000)],
      ['nonce', randomBytes(16).toString('base64url')],
      ['keyid', keyid],
      ['alg', SIGNATURE_ALG],
    ],
  };
  const base = signatureBase(
    { ...message, headers: { ...message.headers, 'content-digest': digest } },
    input,
  );
  return {
    'content-digest': digest,
    'signature-input': `${SIGNATURE_LABEL}=${serializeSignatureInput(input)}`,
    signature: `${SIGNATURE_LABEL}=:${signBase(base, key).toString('base64')}:`,
  };
}

/** Splits an RFC 8941 dictionary into its members' text, outside strings and inner lists. */
function dictionaryMembers(header: string): Map<string, string> {
  const members = new Map<string, string>();
  let depth = 0;
  let quoted = false;
  let start = 0;
  const take = (end: number) => {
    const text = header.slice(start, end).trim();
    const eq = text.indexOf('=');
    if (eq > 0) members.set(text.slice(0, eq).trim(), text.slice(eq + 1));
    else if (text) members.set(text, '');
  };
  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      take(i);
      start = i + 1;
    }
  }
  take(header.length);
  return members;
}

const STRING = /^"((?:[^"\\]|\\["\\])*)"/;

/** Reads the `label` member of a Signature-Input header; throws HttpSignatureError when malformed. */
export function parseSignatureInput(header: string | undefined, label = SIGNATURE_LABEL): SignatureInput {
  const member = header === undefined ? undefined : dictionaryMembers(header).get(label);
  if (member === undefined) throw new HttpSignatureError(`no signature labelled ${label}`);
  let rest = member.trim();
  if (!rest.startsWith('(')) throw new HttpSignatureError('Signature-Input is not an inner list');
  rest = rest.slice(1);
  const components: string[] = [];
  for (;;) {
    rest = rest.replace(/^ +/, '');
    if (rest.startsWith(')')) break;
    const m = STRING.exec(rest);
    if (!m) throw new HttpSignatureError('a covered component is not a string');
    components.push(m[1]!.replace(/\\(.)/g, '$1'));
    rest = rest.slice(m[0].length);
  }
  rest = rest.slice(1);
  const params: Array<[string, ParamValue]> = [];
  while (rest.length > 0) {
    const m = /^;\s*([a-z*][a-z0-9_.*-]*)=/.exec(rest);
    if (!m) throw new HttpSignatureError('a signature parameter is malformed');
    rest = rest.slice(m[0].length);
    const str = STRING.exec(rest);
    const int = /^-?\d{1,15}/.exec(rest);
    if (str) params.push([m[1]!, str[1]!.replace(/\\(.)/g, '$1')]);
    else if (int) params.push([m[1]!, Number(int[0])]);
    else throw new HttpSignatureError(`the parameter ${m[1]} is neither a string nor an integer`);
    rest = rest.slice((str ?? int)![0].length);
  }
  return { components, params };
}

/** Reads the `label` member of a Signature header: the signature bytes. */
export function parseSignature(header: string | undefined, label = SIGNATURE_LABEL): Buffer {
  const member = header === undefined ? undefined : dictionaryMembers(header).get(label);
  const m = member === undefined ? null : /^\s*:([A-Za-z0-9+/]*={0,2}):\s*$/.exec(member);
  if (!m) throw new HttpSignatureError(`no signature labelled ${label}`);
  return Buffer.from(m[1]!, 'base64');
}

/** A parameter of a parsed Signature-Input, or undefined. */
export function signatureParam(input: SignatureInput, name: string): ParamValue | undefined {
  return input.params.find(([k]) => k === name)?.[1];
}
