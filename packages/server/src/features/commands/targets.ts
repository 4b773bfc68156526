import { type CommandTarget, isTargeted, type TargetCandidate } from '@muster/proto';
import type { Kysely } from 'kysely';
import { UnprocessableError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';

const CHUNK = 500;

/** The active nodes a command's target selects, in name order. Unknown names in a list are refused. */
export async function resolveTargets(db: Kysely<Schema>, target: CommandTarget): Promise<TargetCandidate[]> {
  const base = db
    .selectFrom('nodes')
    .select(['id', 'name', 'profile', 'labels'])
    .where('decommissioned_at', 'is', null);
  let rows: { id: string; name: string; profile: string; labels: string }[];
  if ('nodes' in target) {
    const wanted = [...new Set(target.nodes)];
    rows = [];
    for (let i = 0; i < wanted.length; i += CHUNK) {
      const chunk = wanted.slice(i, i + CHUNK);
      rows.push(
        ...(await base.where((eb) => eb.or([eb('name', 'in', chunk), eb('id', 'in', chunk)])).execute()),
      );
    }
    const found = new Set(rows.flatMap((row) => [row.id, row.name]));
    const unknown = wanted.filter((n) => !found.has(n));
    if (unknown.length > 0)
      throw new UnprocessableError(
        `no active node is called ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` (and ${unknown.length - 5} more)` : ''}`,
        'unknown_target',
      );
  } else if ('profile' in target) {
    rows = await base.where('profile', '=', target.profile).execute();
  } else {
    rows = await base.execute();
  }
  const byId = new Map<string, TargetCandidate>();
  for (const row of rows) {
    const node = { id: row.id, name: row.name, profile: row.profile, labels: JSON.parse(row.labels) };
    if (isTargeted(target, node)) byId.set(node.id, node);
  }
  const nodes = [...byId.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (nodes.length === 0) throw new UnprocessableError('the target matches no active node', 'no_target');
  return nodes;
}
