import type { NodeView } from '@muster/proto';
import { useState } from 'preact/hooks';
import { useCan } from '../access.js';
import { api, message } from '../api.js';

/**
 * A node's actions, each offered only when the signed-in role may take it on this node: asking
 * it to move to a fresh key, and decommissioning it (after a confirmation naming it).
 */
export function NodeActions({ node, onChanged }: { node: NodeView; onChanged: () => void }) {
  const can = useCan();
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [done, setDone] = useState<string | undefined>();
  const facets = { labels: node.labels, profile: node.profile };
  const mayRotate = can('update', 'nodes', facets);
  const mayDecommission = can('delete', 'nodes', facets);
  if (node.status === 'decommissioned' || (!mayRotate && !mayDecommission)) return null;
  const path = `/v1/nodes/${encodeURIComponent(node.id)}`;
  const run = async (what: () => Promise<unknown>, said: string) => {
    setError(undefined);
    setDone(undefined);
    setConfirming(false);
    try {
      await what();
      setDone(said);
      onChanged();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <div class="node-actions">
      {mayRotate && (
        <button
          type="button"
          class="small"
          onClick={() => run(() => api('POST', `${path}/rotate`), `${node.name} will move to a fresh key.`)}
        >
          Rotate key
        </button>
      )}
      {mayDecommission &&
        (confirming ? (
          <>
            <button
              type="button"
              class="small danger"
              onClick={() => run(() => api('DELETE', path), `${node.name} is decommissioned.`)}
            >
              Decommission {node.name}
            </button>
            <button type="button" class="small quiet" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <button type="button" class="small" onClick={() => setConfirming(true)}>
            Decommission…
          </button>
        ))}
      {done && <span role="status">{done}</span>}
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
