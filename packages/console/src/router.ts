/** Path routing: real URLs the admin plane answers with the console, so links and reloads work. */

type Listener = () => void;
const listeners = new Set<Listener>();

/** The path with its query: filters live in the URL, so they survive a reload and can be linked. */
export function currentPath(): string {
  return location.pathname + location.search;
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  for (const l of listeners) l();
  window.scrollTo(0, 0);
}

export function onNavigate(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

addEventListener('popstate', () => {
  for (const l of listeners) l();
});

// Internal links move without a page load; anything else (new tab, modifiers) is the browser's.
addEventListener('click', (event) => {
  if (
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    event.altKey
  )
    return;
  const link = (event.target as Element | null)?.closest?.('a');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/v1/')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

/** `/nodes/:id` and friends: the route's name and its parameter. */
export function matchRoute(pathAndQuery: string): { page: string; id?: string } {
  const path = pathAndQuery.split('?')[0]!;
  const node = /^\/nodes\/([^/]+)$/.exec(path);
  if (node) return { page: 'node', id: decodeURIComponent(node[1]!) };
  const command = /^\/commands\/([^/]+)$/.exec(path);
  if (command) return { page: 'command', id: decodeURIComponent(command[1]!) };
  const page = path.replace(/^\/+|\/+$/g, '') || 'nodes';
  return { page };
}
