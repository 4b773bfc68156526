import type { CommandView, EventEnvelope, NodeView } from '@muster/proto';
import { api } from './api.js';

/** How many commands the console asks the server about by id, at most: past that, short ids. */
const MAX_COMMAND_LOOKUPS = 200;

/** The first eight characters of an id: enough to tell ids apart on a page, as git's short hashes. */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

/** What a `kind:id` reference in an event or a ledger entry points at, in words and as a link. */
export interface Named {
  text: string;
  /** The console page of the thing, when it has one. */
  href?: string;
  /** The action of a command, shown apart from its short id. */
  action?: string;
}

/**
 * Names for the ids events and the ledger carry (`node:<uuid>`, `command:<uuid>`). Nodes come
 * from the node list and from events that name them (a decommissioned node keeps its name here);
 * commands from `command.issued` events, the command list, and, for the few left, one read each.
 */
export class Names {
  private readonly nodes = new Map<string, string>();
  private readonly commands = new Map<string, string>();
  private readonly asked = new Set<string>();

  constructor(private readonly changed: () => void) {}

  learnNodes(nodes: Iterable<NodeView>): void {
    for (const n of nodes) this.nodes.set(n.id, n.name);
  }

  learnCommands(commands: Iterable<Pick<CommandView, 'id' | 'action'>>): void {
    for (const c of commands) this.commands.set(c.id, c.action);
  }

  learnEvent(event: EventEnvelope): void {
    const d = event.data as { name?: unknown; action?: unknown; subject?: unknown };
    if (event.nodeId !== undefined && typeof d.name === 'string' && event.kind.startsWith('node.')) {
      this.nodes.set(event.nodeId, d.name);
    }
    if (event.kind === 'command.issued' && typeof d.action === 'string' && typeof d.subject === 'string') {
      const id = d.subject.startsWith('command:') ? d.subject.slice('command:'.length) : undefined;
      if (id) this.commands.set(id, d.action);
    }
  }

  nodeName(id: string, hint?: string): string {
    return this.nodes.get(id) ?? hint ?? shortId(id);
  }

  /** A `kind:id` reference in words; anything else (`admin`, `system`, an operator) as it is. */
  of(ref: string, hint?: string): Named {
    const colon = ref.indexOf(':');
    const kind = colon < 0 ? ref : ref.slice(0, colon);
    const id = colon < 0 ? '' : ref.slice(colon + 1);
    if (kind === 'node' && id) {
      return { text: this.nodeName(id, hint), href: `/nodes/${encodeURIComponent(id)}` };
    }
    if (kind === 'command' && id) {
      const action = this.commands.get(id);
      if (action === undefined) this.lookUpCommand(id);
      return {
        text: shortId(id),
        href: `/commands/${encodeURIComponent(id)}`,
        ...(action !== undefined ? { action } : {}),
      };
    }
    if (kind === 'token' && id) return { text: id, href: '/tokens' };
    if (kind === 'policy' && id) return { text: `policy version ${id}` };
    return { text: ref };
  }

  /** One read per unknown command, never twice; the views draw again when it answers. */
  private lookUpCommand(id: string): void {
    if (this.asked.has(id) || this.asked.size >= MAX_COMMAND_LOOKUPS) return;
    this.asked.add(id);
    void api<CommandView>('GET', `/v1/commands/${encodeURIComponent(id)}`)
      .then((c) => {
        this.commands.set(c.id, c.action);
        this.changed();
      })
      .catch(() => {
        // Unknown to the server or unreachable: the short id stays.
      });
  }
}
