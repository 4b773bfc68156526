import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  type BackupManifest,
  DamagedBackupError,
  headerLine,
  MAX_HEADER_BYTES,
  type ManifestFile,
  parseHeaderLine,
  parseManifest,
} from './format.js';

/** The plaintext of a backup: header, manifest, then each file read from where `sourceOf` says. */
export async function* archiveBytes(
  manifest: BackupManifest,
  sourceOf: (file: ManifestFile) => string,
): AsyncGenerator<Uint8Array> {
  const text = Buffer.from(`${JSON.stringify(manifest)}\n`);
  yield Buffer.from(headerLine(text.length, createHash('sha256').update(text).digest('hex')));
  yield text;
  for (const file of manifest.files) {
    let sent = 0;
    for await (const chunk of createReadStream(sourceOf(file), { highWaterMark: 256 * 1024 })) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    // The sources are a private snapshot; a size that moved means something else wrote there.
    if (sent !== file.size) throw new Error(`${file.path} changed size while the backup was written`);
  }
}

/** Pulls exact amounts from a stream of chunks. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly source: AsyncIterator<Uint8Array>;
  private ended = false;

  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.source = chunks[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.buffer =
      this.buffer.length === 0 ? Buffer.from(next.value) : Buffer.concat([this.buffer, next.value]);
    return true;
  }

  async line(max: number): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf(0x0a);
      if (end >= 0 && end <= max) {
        const text = this.buffer.subarray(0, end).toString('utf8');
        this.buffer = this.buffer.subarray(end + 1);
        return text;
      }
      if (this.buffer.length > max || !(await this.fill()))
        throw new DamagedBackupError('it decrypts, but is not a Muster backup (no backup header)');
    }
  }

  async exactly(n: number, what: string): Promise<Buffer> {
    while (this.buffer.length < n) {
      if (!(await this.fill())) throw new DamagedBackupError(`it ends inside ${what}`);
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  /** Hands `n` bytes to `sink` as they arrive. */
  async pass(n: number, what: string, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffer.length === 0 && !(await this.fill()))
        throw new DamagedBackupError(`it ends inside ${what}`);
      const take = this.buffer.subarray(0, Math.min(left, this.buffer.length));
      this.buffer = this.buffer.subarray(take.length);
      left -= take.length;
      await sink(take);
    }
  }

  async atEnd(): Promise<boolean> {
    return this.buffer.length === 0 && !(await this.fill());
  }
}

/**
 * Reads a decrypted backup: checks the manifest against its checksum, writes each file where
 * `targetOf` says (private, created afresh) while hashing it, then checks every size and
 * SHA-256 and that nothing follows. Throws DamagedBackupError naming the first mismatch; the
 * caller removes what was written then.
 */
export async function extractArchive(
  chunks: AsyncIterable<Uint8Array>,
  targetOf: (file: ManifestFile, manifest: BackupManifest) => string,
): Promise<BackupManifest> {
  const reader = new ByteReader(chunks);
  const header = parseHeaderLine(await reader.line(MAX_HEADER_BYTES));
  const text = await reader.exactly(header.bytes, 'its manifest');
  if (createHash('sha256').update(text).digest('hex') !== header.sha256)
    throw new DamagedBackupError('its manifest does not match its checksum');
  const manifest = parseManifest(text.toString('utf8'));
  for (const file of manifest.files) {
    const target = targetOf(file, manifest);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const handle = await open(target, 'wx', 0o600);
    const hash = createHash('sha256');
    try {
      await reader.pass(file.size, file.path, async (chunk) => {
        hash.update(chunk);
        await handle.write(chunk);
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (hash.digest('hex') !== file.sha256)
      throw new DamagedBackupError(`${file.path} does not match its checksum in the manifest`);
  }
  if (!(await reader.atEnd())) throw new DamagedBackupError('it has bytes after its last file');
  return manifest;
}
