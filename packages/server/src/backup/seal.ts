import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Decrypter, Encrypter } from 'age-encryption';
import { DamagedBackupError } from './format.js';

/*
 * Encryption is age's (age-encryption.org/v1), not ours: a random file key wrapped by an scrypt
 * passphrase stanza (work factor 2^18, age's default), the payload in ChaCha20-Poly1305 chunks of
 * 64 KiB. A backup can be opened with the `age` tool as well: `age -d FILE`.
 */

/** The passphrase does not open this backup. */
export class WrongPassphraseError extends Error {
  constructor() {
    super('the passphrase does not open this backup (wrong passphrase, or not a backup made with it)');
    this.name = 'WrongPassphraseError';
  }
}

type WebBytes = ReadableStream<Uint8Array>;

/** The plaintext stream, encrypted with the passphrase, as a stream of age's format. */
export async function seal(plain: AsyncIterable<Uint8Array>, passphrase: string): Promise<Readable> {
  const encrypter = new Encrypter();
  encrypter.setPassphrase(passphrase);
  const web = Readable.toWeb(Readable.from(plain)) as unknown as WebBytes;
  const sealed = await encrypter.encrypt(web);
  return Readable.fromWeb(sealed as unknown as WebReadableStream<Uint8Array>);
}

/**
 * The plaintext of an age file, chunk by chunk; every chunk it yields has been authenticated.
 * Throws WrongPassphraseError when the passphrase does not open it, DamagedBackupError when the
 * file is not an age file or fails authentication (truncated, or changed after it was written).
 */
export async function* unseal(sealed: Readable, passphrase: string): AsyncGenerator<Uint8Array> {
  const decrypter = new Decrypter();
  decrypter.addPassphrase(passphrase);
  let plain: WebBytes;
  try {
    plain = await decrypter.decrypt(Readable.toWeb(sealed) as unknown as WebBytes);
  } catch (err) {
    sealed.destroy();
    throw headerProblem(err);
  }
  const reader = plain.getReader();
  let done = false;
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (err) {
        if (isSystemError(err)) throw err;
        throw new DamagedBackupError(
          'it is damaged: truncated or changed after it was written (it fails authentication)',
        );
      }
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // Stopped early (damage, or the reader gave up): the file is let go at once.
    if (!done) {
      await reader.cancel().catch(() => {});
      sealed.destroy();
    }
    reader.releaseLock();
  }
}

/** An error reading the file itself (EIO, EACCES) is said as it is, not as damage. */
function isSystemError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'syscall' in err;
}

function headerProblem(err: unknown): Error {
  if (isSystemError(err)) return err as Error;
  const message = err instanceof Error ? err.message : String(err);
  if (/no identity matched/.test(message)) return new WrongPassphraseError();
  if (/invalid header HMAC/.test(message))
    return new DamagedBackupError('its header is damaged (it fails authentication)');
  return new DamagedBackupError('it is not an age-encrypted Muster backup, or its header is damaged');
}
