import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Policy, type PolicyState, signPolicy } from '@muster/proto';
import { makeKeyFile } from '../keys.js';

interface DemoServer {
  identity: { adminToken: string };
  app: {
    admin: {
      inject(opts: {
        method: 'GET' | 'POST';
        url: string;
        headers: Record<string, string>;
        payload?: object;
      }): Promise<{
        statusCode: number;
        body: string;
        json(): unknown;
      }>;
    };
  };
}

/** What the demo's operator may run on each of its profiles. */
function demoPolicy(publicKey: string): Policy {
  const actions = {
    uptime: {
      argv: ['uptime'],
      timeoutSec: 10,
      maxOutputBytes: 4096,
      description: 'how long the host is up, and its load',
    },
    'disk-usage': {
      argv: ['df', '-h', '{path}'],
      args: { path: { pattern: '/[A-Za-z0-9_./-]*' } },
      timeoutSec: 10,
      maxOutputBytes: 8192,
      description: 'free space of the file system holding path',
    },
  };
  return {
    version: 1,
    operators: [{ name: 'demo', publicKey, profiles: ['*'] }],
    profiles: { web: { actions }, db: { actions }, batch: { actions } },
  };
}

/**
 * Gives the demo a working command setup: an operator key in the data dir, the operator
 * registered, and a first policy signed with the data dir's fleet root key. Only when no
 * policy is in force yet and the root key is in the data dir; returns the key file then.
 */
export async function setUpDemoCommands(server: DemoServer, dataDir: string): Promise<string | undefined> {
  const headers = { authorization: `Bearer ${server.identity.adminToken}` };
  const rootKey = join(dataDir, 'root.key');
  const operatorKey = join(dataDir, 'demo-operator.key');
  const state = (
    await server.app.admin.inject({ method: 'GET', url: '/v1/policy', headers })
  ).json() as PolicyState;
  if (state.current) return existsSync(operatorKey) ? operatorKey : undefined;
  if (!existsSync(rootKey)) return undefined;
  const publicKey = existsSync(operatorKey)
    ? readFileSync(`${operatorKey}.pub`, 'utf8').trim()
    : await makeKeyFile(operatorKey);
  await server.app.admin.inject({
    method: 'POST',
    url: '/v1/operators',
    headers,
    payload: { name: 'demo', publicKey, profiles: ['*'] },
  });
  const policy = demoPolicy(publicKey);
  const pushed = await server.app.admin.inject({
    method: 'POST',
    url: '/v1/policy',
    headers,
    payload: { policy, signature: signPolicy(policy, createPrivateKey(readFileSync(rootKey, 'utf8'))) },
  });
  if (pushed.statusCode !== 201) throw new Error(`demo could not push its command policy: ${pushed.body}`);
  return operatorKey;
}
