import { BlockList, isIP } from 'node:net';

/** The `--trusted-proxy` addresses and CIDR blocks: the only peers whose forwarded headers count. */
export class TrustedProxies {
  private readonly list = new BlockList();

  /** Throws an Error naming the entry that is neither an address nor a CIDR block. */
  constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address);
      const max = family === 6 ? 128 : 32;
      if (family === 0 || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)))
        throw new Error(`"${entry}" is not an IP address or CIDR block`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, Number(bits), type);
    }
  }

  /** Whether a connection from `address` comes from a trusted proxy (IPv4-mapped IPv6 is read as IPv4). */
  trusts(address: string | undefined): boolean {
    if (!address) return false;
    const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client address a trusted proxy forwarded (the last X-Forwarded-For entry it appended, or
   * the last `for=` of Forwarded), else the peer itself. From any other peer the headers are ignored.
   */
  clientAddress(
    peer: string | undefined,
    headers: Record<string, string | string[] | undefined>,
  ): string | undefined {
    if (!this.trusts(peer)) return peer;
    const xff = headers['x-forwarded-for'];
    const fromXff = (Array.isArray(xff) ? xff.join(',') : (xff ?? ''))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .pop();
    if (fromXff) return fromXff;
    const fwd = headers.forwarded;
    const last = (Array.isArray(fwd) ? fwd.join(',') : (fwd ?? '')).split(',').pop() ?? '';
    const m = /(?:^|;)\s*for="?\[?([^\]";,]+)/i.exec(last);
    return m?.[1] ?? peer;
  }
}
