import { rm } from 'node:fs/promises';
import { writeFileAtomic } from '@muster/host';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError } from '../../errors.js';
import { CertificateAuthority } from '../../pki/ca.js';
import {
  CA_LIFETIME_MS,
  loadFinishedCa,
  loadRotatedCa,
  promoteRotatedCa,
  rotatedCaPaths,
  type ServerIdentity,
} from '../../pki/datadir.js';
import type { Store } from '../../store/db.js';
import type { Notifications } from '../../store/notifications.js';
import type { CaRotationTable, Schema } from '../../store/schema.js';
import { countNodesOnRoots } from './service.js';

export interface CaRotationDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  /** The data dir's roots and server certificate; a rotation changes them in place. */
  identity: ServerIdentity;
  /** Issues a server certificate from the fleet CA now presented, unless the one held already is. */
  refreshServerCertificate(): Promise<void>;
  /** Puts the server certificate and the trusted roots in front of new connections. */
  applyTls(): void;
  /** Tells the other replicas a rotation started or finished (PostgreSQL NOTIFY). */
  notifications?: Notifications;
}

/** Replicas tell each other the fleet CA rotation changed: each takes it up at once. */
export const CA_CHANNEL = 'muster_ca';

/** Every rotation decision is about the fleet CA as a whole. */
const SUBJECT = 'ca:fleet';

/**
 * Rotation of the fleet CA. `rotate` makes a new root that issues from then on while both are
 * trusted (the overlap); agents on the old root are told to renew; `finish` retires the old
 * root once no active node holds a certificate from it. The state is one row in the shared
 * store; the new root's key stays in the data dir, which replicas share.
 */
export class CaRotationService {
  constructor(private readonly deps: CaRotationDeps) {}

  async record(db: Kysely<Schema> = this.deps.db): Promise<CaRotationTable> {
    return db.selectFrom('ca_rotation').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
  }

  /** Starts the overlap: a new root issues from now on; both are trusted until `finish`. */
  async rotate(actor: string): Promise<void> {
    const { write, clock, ids, decisions, identity } = this.deps;
    const before = await this.record();
    if (before.state === 'overlap') throw alreadyRotating(before);
    const now = clock.now();
    const serial = ids.serial();
    const { ca: next, keyPem } = CertificateAuthority.create({
      now,
      lifetimeMs: CA_LIFETIME_MS,
      trustDomain: identity.ca.trustDomain,
      serial,
      generation: new Date(now).toISOString().slice(0, 10),
    });
    // Written before the rotation is recorded: once any replica reads the record, the key is there.
    const files = rotatedCaPaths(identity.paths.dir, serial);
    await writeFileAtomic(files.key, keyPem, 0o600);
    await writeFileAtomic(files.cert, next.pem, 0o644);
    const old = identity.ca;
    try {
      await write(async (trx) => {
        const started = await trx
          .updateTable('ca_rotation')
          .set({
            state: 'overlap',
            old_serial: old.serial,
            old_pem: old.pem,
            new_serial: next.serial,
            new_pem: next.pem,
            started_at: now,
            finished_at: null,
          })
          .where('id', '=', 1)
          .where('state', '!=', 'overlap')
          .returning('id')
          .executeTakeFirst();
        if (!started) throw alreadyRotating(await this.record(trx));
        await this.deps.notifications?.notify(trx, CA_CHANNEL);
        await decisions.record(trx, {
          kind: 'ca.rotation_started',
          actor,
          subject: SUBJECT,
          data: {
            oldSerial: old.serial,
            oldPin: old.pin,
            newSerial: next.serial,
            newPin: next.pin,
            newNotAfter: next.notAfter,
          },
        });
      });
    } catch (err) {
      // Another replica started one first: this root never issued anything.
      await rm(files.key, { force: true });
      await rm(files.cert, { force: true });
      throw err;
    }
    identity.nextCa = next;
    this.deps.applyTls();
  }

  /**
   * Retires the old root. Refused while active nodes still hold certificates from it, unless
   * forced: those nodes can then no longer connect until they enroll again.
   */
  async finish(actor: string, force: boolean): Promise<{ nodesOnRetired: number }> {
    const { write, clock, decisions, identity } = this.deps;
    await this.sync();
    const rotation = await this.record();
    const next = identity.nextCa;
    if (rotation.state !== 'overlap' || !next)
      throw new ConflictError(
        'no CA rotation is in progress; start one with "muster ca rotate"',
        'no_rotation',
      );
    const old = identity.ca;
    const onOld = (await countNodesOnRoots(this.deps.db, [old])).onRoot[0]!;
    if (onOld > 0 && !force) throw stillOnOldRoot(onOld);
    await write(async (trx) => {
      const finished = await trx
        .updateTable('ca_rotation')
        .set({ state: 'finished', finished_at: clock.now() })
        .where('id', '=', 1)
        .where('state', '=', 'overlap')
        .where('new_serial', '=', next.serial)
        .returning('id')
        .executeTakeFirst();
      if (!finished)
        throw new ConflictError('this CA rotation was already finished (by another replica)', 'no_rotation');
      await this.deps.notifications?.notify(trx, CA_CHANNEL);
      await decisions.record(trx, {
        kind: 'ca.rotation_finished',
        actor,
        subject: SUBJECT,
        data: { retiredSerial: old.serial, serial: next.serial, forced: force, nodesOnRetired: onOld },
      });
    });
    await promoteRotatedCa(identity.paths, rotatedCaPaths(identity.paths.dir, next.serial));
    await this.adopt(next);
    return { nodesOnRetired: onOld };
  }

  /**
   * Takes up what another replica did: a rotation it started (the new root is read from the
   * shared data dir) or finished. Cheap when nothing changed; runs on a timer.
   */
  async sync(): Promise<void> {
    const { identity } = this.deps;
    const row = await this.record();
    if (row.state === 'overlap') {
      if (identity.nextCa?.serial === row.new_serial) return;
      identity.nextCa = await loadRotatedCa(identity.paths.dir, row.new_serial!, identity.ca.trustDomain);
      this.deps.applyTls();
    } else if (row.state === 'finished' && identity.ca.serial !== row.new_serial) {
      const next =
        identity.nextCa?.serial === row.new_serial
          ? identity.nextCa
          : await loadFinishedCa(identity.paths, row.new_serial!, identity.ca.trustDomain);
      await this.adopt(next);
    } else if (identity.nextCa) {
      identity.nextCa = undefined; // no longer on record: it never became the fleet's root
      this.deps.applyTls();
    }
  }

  /** Makes a finished rotation's root the one this process presents and trusts alone. */
  private async adopt(next: CertificateAuthority): Promise<void> {
    const { identity } = this.deps;
    identity.ca = next;
    identity.nextCa = undefined;
    await this.deps.refreshServerCertificate();
    this.deps.applyTls();
  }

  /** How long agents on the retiring root get to renew, spread at random: six heartbeat intervals. */
  static renewWindowSec(heartbeatIntervalMs: number): number {
    return Math.max(5, Math.round((6 * heartbeatIntervalMs) / 1000));
  }
}

function alreadyRotating(rotation: CaRotationTable): ConflictError {
  const since = rotation.started_at ? ` (started ${new Date(rotation.started_at).toISOString()})` : '';
  return new ConflictError(
    `a CA rotation is already in progress${since}; finish it with "muster ca finish" before starting another`,
    'rotation_in_progress',
  );
}

function stillOnOldRoot(count: number): ConflictError {
  const nodes = count === 1 ? '1 active node is' : `${count} active nodes are`;
  return new ConflictError(
    `${nodes} still on the old root; wait until they have renewed (muster ca status), or retire it anyway with --force, after which they cannot connect until enrolled again`,
    'nodes_on_old_root',
  );
}

/**
 * Takes up a CA rotation another replica started or finished as soon as it says so (NOTIFY on
 * CA_CHANNEL, and once on every (re)connection of the listener, which may have missed one);
 * never overlaps itself, and a sync that failed is tried again a second later. Without
 * notifications (SQLite) this process is the only one, and syncs once at start.
 */
export function startCaSync(
  rotation: CaRotationService,
  notifications: Notifications | undefined,
  signal: AbortSignal,
  logger: Logger,
): void {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await rotation.sync();
      } while (again && !signal.aborted);
    } catch (err) {
      if (!signal.aborted) {
        logger.warn({ err }, 'could not take up the fleet CA rotation state; trying again in 1 s');
        setTimeout(() => void run(), 1_000).unref();
      }
    } finally {
      running = false;
    }
  };
  if (notifications) notifications.listen(CA_CHANNEL, () => void run(), signal);
  else void run();
}
