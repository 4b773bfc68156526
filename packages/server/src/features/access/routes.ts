import {
  ApiTokenCreated,
  ApiTokenCreateRequest,
  ApiTokenView,
  MeView,
  NoBody,
  ROLE_NAME_PATTERN,
  type RoleSpec,
  RoleSpecSchema,
  RoleView,
  USER_NAME_PATTERN,
  UserCreated,
  UserCreateRequest,
  UserEmailRequest,
  UserRoleRequest,
  UserView,
} from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../identity.js';
import type { CredentialService } from './credentials.js';
import { mayAccess } from './guard.js';
import type { LoginService } from './login.js';
import type { PeopleService } from './people.js';

const UserParams = Type.Object({ name: Type.String({ pattern: USER_NAME_PATTERN }) });
const RoleParams = Type.Object({ name: Type.String({ pattern: ROLE_NAME_PATTERN }) });
const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

type UserUpdate = { role?: string; disabled?: boolean };

const principalOf = (request: FastifyRequest): Principal => request.principal!;

/** `/v1/users`, `/v1/roles` and `/v1/apitokens`: people, their roles and their credentials. */
export function accessRoutes(
  app: FastifyInstance,
  deps: { people: PeopleService; credentials: CredentialService; logins: LoginService },
): void {
  const { people, credentials, logins } = deps;
  app.get(
    '/v1/me',
    {
      // Whoever holds a valid credential may learn who it says they are, whatever their role.
      config: { access: { verb: 'read', resource: 'users', anyPrincipal: true } },
      schema: { response: { 200: MeView } },
    },
    async (request) => {
      const by = principalOf(request);
      return { user: by.user, role: by.roles[0]?.name ?? 'none', credential: by.credential, roles: by.roles };
    },
  );
  app.get(
    '/v1/users',
    {
      config: { access: { verb: 'read', resource: 'users' } },
      schema: { response: { 200: Type.Object({ items: Type.Array(UserView) }) } },
    },
    async () => ({ items: await people.listUsers() }),
  );
  app.post(
    '/v1/users',
    {
      config: { access: { verb: 'create', resource: 'users' } },
      schema: { body: UserCreateRequest, response: { 201: UserCreated } },
    },
    async (request, reply) => {
      const body = request.body as UserCreateRequest;
      const user = await people.addUser(body.name, body.role, request.actor, body.email);
      // The code of their first `muster login`, shown once, like an API token's secret.
      const loginCode = await logins.issueCode(user.name, request.actor);
      return reply.code(201).send({ ...user, loginCode });
    },
  );
  app.get(
    '/v1/users/:name',
    {
      config: { access: { verb: 'read', resource: 'users' } },
      schema: { params: UserParams, response: { 200: UserView } },
    },
    async (request) => people.getUser((request.params as { name: string }).name),
  );
  const change = (suffix: string, body: typeof UserRoleRequest | undefined, of: (b: unknown) => UserUpdate) =>
    app.post(
      `/v1/users/:name/${suffix}`,
      {
        config: { access: { verb: 'update', resource: 'users' } },
        schema: { params: UserParams, body: body ?? NoBody, response: { 200: UserView } },
      },
      async (request) =>
        people.updateUser((request.params as { name: string }).name, of(request.body), request.actor),
    );
  change('role', UserRoleRequest, (b) => ({ role: (b as UserRoleRequest).role }));
  change('disable', undefined, () => ({ disabled: true }));
  change('enable', undefined, () => ({ disabled: false }));
  app.post(
    '/v1/users/:name/email',
    {
      config: { access: { verb: 'update', resource: 'users' } },
      schema: { params: UserParams, body: UserEmailRequest, response: { 200: UserView } },
    },
    async (request) =>
      people.setEmail(
        (request.params as { name: string }).name,
        (request.body as UserEmailRequest).email,
        request.actor,
      ),
  );
  app.get(
    '/v1/roles',
    {
      config: { access: { verb: 'read', resource: 'roles' } },
      schema: { response: { 200: Type.Object({ items: Type.Array(RoleView) }) } },
    },
    async () => ({ items: await people.listRoles() }),
  );
  app.get(
    '/v1/roles/:name',
    {
      config: { access: { verb: 'read', resource: 'roles' } },
      schema: { params: RoleParams, response: { 200: RoleView } },
    },
    async (request) => people.getRole((request.params as { name: string }).name),
  );
  app.post(
    '/v1/roles',
    {
      config: { access: { verb: 'update', resource: 'roles' } },
      schema: { body: RoleSpecSchema, response: { 200: RoleView } },
    },
    async (request) => people.applyRole(request.body as RoleSpec, request.actor),
  );
  app.post(
    '/v1/apitokens',
    {
      config: { access: { verb: 'create', resource: 'apitokens', own: true } },
      schema: { body: ApiTokenCreateRequest, response: { 201: ApiTokenCreated } },
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as ApiTokenCreateRequest;
      return reply.code(201).send(await credentials.create(body, principalOf(request), request.actor));
    },
  );
  app.get(
    '/v1/apitokens',
    {
      config: { access: { verb: 'read', resource: 'apitokens', own: true } },
      schema: { response: { 200: Type.Object({ items: Type.Array(ApiTokenView) }) } },
    },
    async (request) => {
      const by = principalOf(request);
      return { items: await credentials.list(by, mayAccess(by, { verb: 'read', resource: 'apitokens' })) };
    },
  );
  app.delete(
    '/v1/apitokens/:id',
    {
      config: { access: { verb: 'delete', resource: 'apitokens', own: true } },
      schema: { params: TokenParams, body: NoBody },
    },
    async (request, reply) => {
      const by = principalOf(request);
      const anyone = mayAccess(by, { verb: 'delete', resource: 'apitokens' });
      await credentials.revoke((request.params as { id: string }).id, by, anyone, request.actor);
      return reply.code(204).send();
    },
  );
}
