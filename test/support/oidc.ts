import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Provider from 'oidc-provider';

/** What the provider knows of one account: the claims of the `email` scope. */
export interface TestAccount {
  email?: string;
  email_verified?: boolean;
}

/** A real OpenID provider (the `oidc-provider` package) on loopback, with its dev login pages. */
export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /**
   * From now on, the token endpoint's ID tokens are for another client (`aud`), signed again
   * with the provider's own key, as a provider confused about clients would issue them.
   */
  issueForOtherAudience(on: boolean): void;
  close(): Promise<void>;
}

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Re-signs an RS256 JWT with the provider's key, its payload changed by `change`. */
function resign(jwt: string, key: KeyObject, change: (payload: Record<string, unknown>) => void): string {
  const [header, payload] = jwt.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  change(claims);
  const body = `${header}.${b64u(claims)}`;
  return `${body}.${sign('sha256', Buffer.from(body), key).toString('base64url')}`;
}

/**
 * Starts the provider. It is started before Muster (whose issuer flag names it) and configured
 * when Muster's address is known (`configure`), since each must know the other's URL.
 */
export async function startProvider(accounts: Record<string, TestAccount>): Promise<{
  issuer: string;
  configure(redirectUri: string, opts?: { idTokenTtlSec?: number }): TestProvider;
}> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
  return {
    issuer,
    configure(redirectUri, opts = {}) {
      const clientId = 'muster';
      const clientSecret = 'test-client-secret-that-is-long-enough';
      let otherAudience = false;
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: clientId,
            client_secret: clientSecret,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        jwks: { keys: [jwk] },
        cookies: { keys: ['test-cookie-key'] },
        claims: { openid: ['sub'], email: ['email', 'email_verified'] },
        pkce: { required: () => true },
        ttl: { IdToken: opts.idTokenTtlSec ?? 3600 },
        findAccount: async (_ctx: unknown, id: string) =>
          accounts[id] ? { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) } : undefined,
      });
      provider.use(async (ctx, next) => {
        await next();
        const body = ctx.body as { id_token?: string } | undefined;
        if (otherAudience && ctx.path === '/token' && body?.id_token)
          body.id_token = resign(body.id_token, privateKey, (claims) => {
            claims.aud = 'wiki';
          });
      });
      handler = provider.callback();
      return {
        issuer,
        clientId,
        clientSecret,
        issueForOtherAudience: (on) => {
          otherAudience = on;
        },
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    },
  };
}
