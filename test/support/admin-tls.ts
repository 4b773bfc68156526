import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An operator's own CA and a certificate for the admin plane on 127.0.0.1, made with openssl as
 * an operator would, for `muster server --admin-cert/--admin-key`.
 */
export function opensslAdminTls(dir: string): { cert: string; key: string; ca: string; caPem: string } {
  const at = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    at('admin-ca.key'),
    '-out',
    at('admin-ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=test admin CA',
  ]);
  openssl(['req', ...ec, '-keyout', at('admin.key'), '-out', at('admin.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(at('admin.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    at('admin.csr'),
    '-CA',
    at('admin-ca.pem'),
    '-CAkey',
    at('admin-ca.key'),
    '-CAcreateserial',
    '-out',
    at('admin.pem'),
    '-days',
    '1',
    '-extfile',
    at('admin.ext'),
  ]);
  chmodSync(at('admin.key'), 0o600);
  return {
    cert: at('admin.pem'),
    key: at('admin.key'),
    ca: at('admin-ca.pem'),
    caPem: readFileSync(at('admin-ca.pem'), 'utf8'),
  };
}
