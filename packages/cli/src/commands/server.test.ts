import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminFlagsFor } from './server.js';

test('hints carry the flags an admin verb needs to reach the server and its token from here', () => {
  const cwd = '/srv/fleet';
  const defaults = { dataDir: '/srv/fleet/.muster' };
  assert.equal(adminFlagsFor('http://127.0.0.1:8080', defaults, { cwd }), '');
  assert.equal(
    adminFlagsFor('http://127.0.0.1:8080', defaults, { cwd, always: true }),
    ' --url http://127.0.0.1:8080 --data-dir ./.muster',
  );
  assert.equal(
    adminFlagsFor('https://0.0.0.0:9443', { dataDir: '/var/lib/muster' }, { cwd }),
    ' --url https://127.0.0.1:9443 --data-dir /var/lib/muster',
  );
  assert.equal(
    adminFlagsFor('http://[::]:8080', { dataDir: '/x', adminTokenFile: '/etc/muster/admin.token' }, { cwd }),
    ' --url http://[::1]:8080 --token-file /etc/muster/admin.token',
  );
});
