import type { NodeView } from '@muster/proto';
import { Fragment } from 'preact';
import { bytes, labelText, time, until } from '../format.js';

/** What the node says about itself: profile, system, agent, labels, id. */
export function FactsCard({ node }: { node: NodeView }) {
  return (
    <section class="card" aria-labelledby="facts-title">
      <h2 id="facts-title">Facts</h2>
      <dl class="facts">
        <dt>Profile</dt>
        <dd>{node.profile}</dd>
        <dt>Hostname</dt>
        <dd>{node.facts.hostname}</dd>
        <dt>System</dt>
        <dd>
          {node.facts.os} {node.facts.arch} · {node.facts.kernel}
        </dd>
        <dt>CPUs · memory</dt>
        <dd>
          {node.facts.cpus} · {bytes(node.facts.memoryBytes)}
        </dd>
        <dt>Agent</dt>
        <dd>{node.facts.agentVersion}</dd>
        <dt>Labels</dt>
        <dd class="labels">
          {labelText(node.labels).length === 0
            ? 'none'
            : labelText(node.labels).map((l) => (
                <span class="chip" key={l}>
                  {l}
                </span>
              ))}
        </dd>
        <dt>Node id</dt>
        <dd>
          <code>{node.id}</code>
        </dd>
      </dl>
    </section>
  );
}

/** The node's certificate: serial, issuer, expiry, when renewal is due, a renewal not yet used. */
export function CertificateCard({ node, now }: { node: NodeView; now: number }) {
  const lifetime = Date.parse(node.cert.notAfter) - Date.parse(node.cert.notBefore);
  const renewalDue = new Date(Date.parse(node.cert.notBefore) + (lifetime * 2) / 3).toISOString();
  return (
    <section class="card" aria-labelledby="cert-title">
      <h2 id="cert-title">Certificate</h2>
      <dl class="facts">
        <dt>Serial</dt>
        <dd>
          <code class="wrap">{node.cert.serial}</code>
        </dd>
        <dt>Issuer</dt>
        <dd>{node.cert.issuer}</dd>
        <dt>Expires</dt>
        <dd>
          {time(node.cert.notAfter)} ({until(node.cert.notAfter, now)})
        </dd>
        <dt>Renewal due</dt>
        <dd>
          {time(renewalDue)} ({until(renewalDue, now)})
        </dd>
        {node.cert.pending && (
          <>
            <dt>Renewed, not yet used</dt>
            <dd>
              <code class="wrap">{node.cert.pending.serial}</code>
            </dd>
          </>
        )}
        {node.cert.rotationRequestedAt && (
          <>
            <dt>Key rotation asked</dt>
            <dd>{time(node.cert.rotationRequestedAt)}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

/** Load, memory and disks as the latest heartbeat reported them. */
export function LatestCard({ latest }: { latest: NonNullable<NodeView['latest']> }) {
  return (
    <section class="card" aria-labelledby="now-title">
      <h2 id="now-title">Latest heartbeat</h2>
      <dl class="facts">
        <dt>Load</dt>
        <dd>{latest.load.map((l) => l.toFixed(2)).join(' · ')}</dd>
        <dt>Memory free</dt>
        <dd>
          {bytes(latest.memory.availableBytes)} of {bytes(latest.memory.totalBytes)}
        </dd>
        {latest.disks.map((d) => (
          <Fragment key={d.mount}>
            <dt>Disk {d.mount}</dt>
            <dd>
              {bytes(d.totalBytes - d.freeBytes)} of {bytes(d.totalBytes)} used
            </dd>
          </Fragment>
        ))}
      </dl>
    </section>
  );
}
