import type { Socket } from 'node:net';

/**
 * The agent-plane sockets each node currently holds, so revoking a node can cut them at once
 * instead of waiting for their next request.
 */
export class LiveConnections {
  private readonly byNode = new Map<string, Set<Socket>>();
  private readonly owner = new WeakMap<Socket, string>();

  track(nodeId: string, socket: Socket): void {
    if (this.owner.get(socket) === nodeId) return;
    this.owner.set(socket, nodeId);
    let sockets = this.byNode.get(nodeId);
    if (!sockets) {
      sockets = new Set();
      this.byNode.set(nodeId, sockets);
    }
    sockets.add(socket);
    socket.once('close', () => {
      const set = this.byNode.get(nodeId);
      set?.delete(socket);
      if (set?.size === 0) this.byNode.delete(nodeId);
    });
  }

  /** Closes every connection the node holds; returns how many there were. */
  cut(nodeId: string): number {
    const sockets = this.byNode.get(nodeId);
    if (!sockets) return 0;
    this.byNode.delete(nodeId);
    for (const socket of sockets) socket.destroy();
    return sockets.size;
  }

  /** How many connections are held, across all nodes. */
  get size(): number {
    let n = 0;
    for (const set of this.byNode.values()) n += set.size;
    return n;
  }
}
