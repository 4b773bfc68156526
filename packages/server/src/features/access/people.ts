import {
  BUILTIN_ROLES,
  builtinRole,
  type RoleSpec,
  type RoleView,
  roleProblems,
  type UserView,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError, NotFoundError, UnprocessableError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { RolesTable, Schema, UsersTable } from '../../store/schema.js';
import { endPersonalCredentials, revokeUserCertificates } from './revocation.js';

/** The first admin: the user whose credential is the bootstrap `admin.token`. */
export const BOOTSTRAP_USER = 'admin';

export interface PeopleDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export function userView(row: UsersTable): UserView {
  return {
    name: row.name,
    role: row.role,
    disabled: row.disabled_at !== null,
    disabledAt: iso(row.disabled_at),
    createdAt: iso(row.created_at)!,
    createdBy: row.created_by,
    email: row.email ?? null,
  };
}

function roleView(spec: RoleSpec, builtin: boolean, updatedAt: number | null): RoleView {
  return { name: spec.name, builtin, allow: spec.allow, deny: spec.deny ?? [], updatedAt: iso(updatedAt) };
}

/** Reads a stored custom role; a row that does not parse grants nothing. */
export function parseRole(name: string, spec: string | null | undefined): RoleSpec {
  const builtin = builtinRole(name);
  if (builtin) return builtin;
  if (!spec) return { name, allow: [] };
  try {
    return JSON.parse(spec) as RoleSpec;
  } catch {
    return { name, allow: [] };
  }
}

/** One address names one user: SSO could not tell two apart. The unique index backs this up. */
async function requireFreeEmail(trx: Kysely<Schema>, email: string, name: string): Promise<void> {
  const holder = await trx
    .selectFrom('users')
    .select('name')
    .where('email', '=', email)
    .where('name', '!=', name)
    .executeTakeFirst();
  if (holder) throw new ConflictError(`user ${holder.name} already has the e-mail ${email}`, 'email_taken');
}

/** Users and custom roles: each change a ledger decision (and an event) in its transaction. */
export class PeopleService {
  constructor(private readonly deps: PeopleDeps) {}

  async addUser(name: string, role: string, actor: string, email?: string): Promise<UserView> {
    const { write, clock, decisions } = this.deps;
    const row: UsersTable = {
      name,
      role,
      disabled_at: null,
      created_at: clock.now(),
      created_by: actor,
      email: email === undefined ? null : email.toLowerCase(),
    };
    await write(async (trx) => {
      await this.requireRole(trx, role);
      const existing = await trx
        .selectFrom('users')
        .select('name')
        .where('name', '=', name)
        .executeTakeFirst();
      if (existing) throw new ConflictError(`a user named ${name} already exists`, 'user_exists');
      if (row.email !== null) await requireFreeEmail(trx, row.email, name);
      await trx.insertInto('users').values(row).execute();
      await decisions.record(trx, {
        kind: 'user.added',
        actor,
        subject: `user:${name}`,
        data: { role, ...(row.email !== null ? { email: row.email } : {}) },
      });
    });
    return userView(row);
  }

  async listUsers(): Promise<UserView[]> {
    const rows = await this.deps.db.selectFrom('users').selectAll().orderBy('name').execute();
    return rows.map(userView);
  }

  async getUser(name: string): Promise<UserView> {
    const row = await this.deps.db
      .selectFrom('users')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw new NotFoundError(`no user named ${name}`, 'no_user');
    return userView(row);
  }

  /** The user single sign-on matches to a verified e-mail, if any has it. */
  async userByEmail(email: string): Promise<UserView | undefined> {
    const row = await this.deps.db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', email.toLowerCase())
      .executeTakeFirst();
    return row ? userView(row) : undefined;
  }

  /** Changes a user's role or disables/enables them; each change its own decision. */
  async updateUser(name: string, change: { role?: string; disabled?: boolean }, actor: string) {
    const { write, clock, decisions } = this.deps;
    return write(async (trx) => {
      const row = await trx.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw new NotFoundError(`no user named ${name}`, 'no_user');
      const subject = `user:${name}`;
      if (change.role !== undefined && change.role !== row.role) {
        await this.requireRole(trx, change.role);
        await trx.updateTable('users').set({ role: change.role }).where('name', '=', name).execute();
        await decisions.record(trx, {
          kind: 'user.role_changed',
          actor,
          subject,
          data: { from: row.role, to: change.role },
        });
        row.role = change.role;
      }
      if (change.disabled === true && row.disabled_at === null) {
        row.disabled_at = clock.now();
        await trx
          .updateTable('users')
          .set({ disabled_at: row.disabled_at })
          .where('name', '=', name)
          .execute();
        // Certificates and sessions end for good: enabling again does not bring them back.
        const certificatesRevoked = await revokeUserCertificates(trx, name, row.disabled_at);
        const sessionsEnded = await endPersonalCredentials(trx, name);
        await decisions.record(trx, {
          kind: 'user.disabled',
          actor,
          subject,
          data: { certificatesRevoked, sessionsEnded },
        });
      } else if (change.disabled === false && row.disabled_at !== null) {
        row.disabled_at = null;
        await trx.updateTable('users').set({ disabled_at: null }).where('name', '=', name).execute();
        await decisions.record(trx, { kind: 'user.enabled', actor, subject, data: {} });
      }
      return userView(row);
    });
  }

  /** Sets or removes the e-mail single sign-on matches a user by; a change is a decision. */
  async setEmail(name: string, email: string | null, actor: string): Promise<UserView> {
    const lower = email === null ? null : email.toLowerCase();
    return this.deps.write(async (trx) => {
      const row = await trx.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw new NotFoundError(`no user named ${name}`, 'no_user');
      if ((row.email ?? null) === lower) return userView(row);
      if (lower !== null) await requireFreeEmail(trx, lower, name);
      await trx.updateTable('users').set({ email: lower }).where('name', '=', name).execute();
      await this.deps.decisions.record(trx, {
        kind: 'user.email_changed',
        actor,
        subject: `user:${name}`,
        data: { from: row.email ?? null, to: lower },
      });
      return userView({ ...row, email: lower });
    });
  }

  /** Creates or replaces a custom role. */
  async applyRole(spec: RoleSpec, actor: string): Promise<RoleView> {
    const problems = roleProblems(spec);
    if (problems.length > 0)
      throw new UnprocessableError(`role ${spec.name}: ${problems.join('; ')}`, 'bad_role');
    const { write, clock, decisions } = this.deps;
    const normal: RoleSpec = { name: spec.name, allow: spec.allow, deny: spec.deny ?? [] };
    const row: RolesTable = { name: spec.name, spec: JSON.stringify(normal), updated_at: clock.now() };
    await write(async (trx) => {
      await trx
        .insertInto('roles')
        .values(row)
        .onConflict((oc) => oc.column('name').doUpdateSet({ spec: row.spec, updated_at: row.updated_at }))
        .execute();
      await decisions.record(trx, {
        kind: 'role.applied',
        actor,
        subject: `role:${spec.name}`,
        data: { allow: normal.allow, deny: normal.deny },
      });
    });
    return roleView(normal, false, row.updated_at);
  }

  async listRoles(): Promise<RoleView[]> {
    const rows = await this.deps.db.selectFrom('roles').selectAll().orderBy('name').execute();
    return [
      ...Object.values(BUILTIN_ROLES).map((spec) => roleView(spec, true, null)),
      ...rows.map((row) => roleView(parseRole(row.name, row.spec), false, row.updated_at)),
    ];
  }

  async getRole(name: string): Promise<RoleView> {
    return roleView(await this.role(this.deps.db, name), builtinRole(name) !== undefined, null);
  }

  /** A role by name, built-in or custom; NotFoundError when there is none. */
  async role(db: Kysely<Schema>, name: string): Promise<RoleSpec> {
    const builtin = builtinRole(name);
    if (builtin) return builtin;
    const row = await db.selectFrom('roles').select('spec').where('name', '=', name).executeTakeFirst();
    if (!row) throw new NotFoundError(`no role named ${name} (built-in: viewer, operator, admin)`, 'no_role');
    return parseRole(name, row.spec);
  }

  private async requireRole(trx: Kysely<Schema>, name: string): Promise<void> {
    try {
      await this.role(trx, name);
    } catch (err) {
      if (err instanceof NotFoundError) throw new UnprocessableError(err.message, 'no_role');
      throw err;
    }
  }
}
