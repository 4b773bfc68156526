import { Agent as HttpsAgent } from 'node:https';
import { resolve } from 'node:path';
import {
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  importKeyPairPem,
  requestJson,
  ServerError,
  UsageError,
} from '@muster/host';
import { LOGIN_CODE_PATTERN, type LoginRequest, type LoginResponse } from '@muster/proto';
import { ADMIN_SETTINGS, adminCa, adminUrl, ConnectionError } from '../client.js';
import type { Command } from '../command.js';
import { type HeldLogin, heldLogin, loginFiles, storeLogin } from '../logins.js';
import { displayPath, printJson, safe } from '../output.js';

const FLAGS = ADMIN_SETTINGS.filter((s) => ['url', 'ca', 'data-dir', 'json'].includes(s.flag));

/** What the first login or a renewal sends: a CSR for the key, and the code or the certificate held. */
async function request(
  url: URL,
  code: string | undefined,
  held: HeldLogin | undefined,
  ca: string | undefined,
) {
  const keys = code === undefined ? importKeyPairPem(held!.keyPem) : await generateKeyPair();
  // The server names the certificate by policy; the CSR only proves the key is ours.
  const body: LoginRequest = { csr: createCsrPem(keys, 'muster-login'), ...(code ? { code } : {}) };
  const agent = new HttpsAgent({
    keepAlive: false,
    ...(ca ? { ca } : {}),
    ...(code === undefined ? { key: held!.keyPem, cert: held!.certPem } : {}),
  });
  try {
    const { body: answer } = await requestJson<LoginResponse>(new URL('/v1/login', url), {
      method: 'POST',
      body,
      agent,
      timeoutMs: 30_000,
    });
    return { answer, keyPem: code === undefined ? undefined : exportPrivateKeyPem(keys.privateKey) };
  } catch (err) {
    if (err instanceof ServerError) throw err;
    throw new ConnectionError(`cannot reach the control plane at ${url.origin}: ${(err as Error).message}`);
  } finally {
    agent.destroy();
  }
}

export const loginCommand: Command = {
  path: ['login'],
  summary: 'get a personal client certificate for the admin plane (first with a code, then to renew)',
  details:
    'Makes an ECDSA P-256 key on this machine (it is never sent) and gets a short-lived\n' +
    "certificate for it from the fleet's CA, 12 h by default. The first login takes the\n" +
    'one-time code `muster user add` printed (an admin makes a new one with\n' +
    '`muster user login-code NAME`); later ones renew with the certificate held, no code.\n' +
    'Admin verbs given the same --url then use the certificate instead of a token.\n' +
    'The admin plane must serve HTTPS: off loopback, or given --admin-cert/--admin-key.\n\n' +
    'Files: $XDG_CONFIG_HOME/muster/logins/HOST_PORT/ (default ~/.config/muster/...):\n' +
    'user.key and user.crt (mode 0600), and ca.pem when --ca was given (kept for later verbs).\n\n' +
    'Example:\n' +
    '  muster login --url https://muster.example.com:8080 --code mlc_…\n' +
    '  muster nodes ls --url https://muster.example.com:8080\n' +
    '  muster login --url https://muster.example.com:8080     # renew, before it expires',
  settings: [
    { flag: 'code', kind: 'string', value: 'CODE', help: 'the one-time login code (first login only)' },
    ...FLAGS,
  ],
  async run({ values, positionals, env }) {
    if (positionals.length > 0) throw new UsageError('login takes no arguments, only flags');
    if (values.url === undefined)
      throw new UsageError('--url is required: the https:// URL of the admin plane');
    const url = adminUrl(values);
    if (url.protocol !== 'https:')
      throw new UsageError(
        `--url: a certificate is only used over HTTPS; give the admin plane's https:// URL (the server serves it given --admin-cert/--admin-key, or off loopback)`,
      );
    const code = values.code as string | undefined;
    if (code !== undefined && !new RegExp(LOGIN_CODE_PATTERN).test(code))
      throw new UsageError('--code: not a login code (they look like mlc_ followed by 43 characters)');
    const held = heldLogin(url, env);
    if (code === undefined) {
      if (!held)
        throw new UsageError(
          `no login held for ${url.origin}: the first login takes --code CODE (muster user add printed it; an admin makes a new one with muster user login-code NAME)`,
        );
      if (held.notAfter <= Date.now())
        throw new UsageError(
          `the certificate for ${url.origin} expired at ${new Date(held.notAfter).toISOString()}; log in again with --code CODE (an admin makes one with muster user login-code ${held.user})`,
        );
    }
    const dataDir = resolve((values['data-dir'] as string | undefined) ?? '.muster');
    const ca = adminCa(values, url, env, dataDir);
    // A CA given here is kept beside the certificate, so later verbs need not be told again.
    const givenCa = typeof values.ca === 'string' ? ca : undefined;
    const { answer, keyPem } = await request(url, code, held, ca);
    const files = loginFiles(url, env);
    await storeLogin(files, {
      certPem: answer.certificate,
      ...(keyPem ? { keyPem } : {}),
      ...(givenCa ? { caPem: givenCa } : {}),
    });
    if (values.json) {
      printJson({ user: answer.user, serial: answer.serial, notAfter: answer.notAfter, dir: files.dir });
      return 0;
    }
    console.log(
      `${code ? 'Logged in' : 'Renewed'} as ${safe(answer.user)} at ${url.origin}; the certificate (serial ${answer.serial}) is valid until ${answer.notAfter}.\n` +
        `Kept in ${displayPath(files.dir)}; admin verbs given --url ${url.origin} use it.\n` +
        `Renew before then with: muster login --url ${url.origin}`,
    );
    return 0;
  },
};
