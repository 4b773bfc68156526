import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installLine } from './install.js';

const info = {
  url: 'https://fleet.example:8443',
  caCertSha256: 'ab'.repeat(32),
  caPin: `sha256:${'cd'.repeat(32)}`,
  rootPin: `sha256:${'ef'.repeat(32)}`,
};
const secret = 'mjt_8G9ZqGvx4qBPHkhH3WoJiQHNM5W6ORzqu2yMKEeV2M0';

test('the installer line pipes the token through printf and puts it nowhere else', () => {
  const line = installLine({ info, secret, agent: 'executable', name: 'web-1' });
  assert.ok(line.startsWith(`printf '%s' '${secret}' | sh -c '`));
  assert.equal(line.split(secret).length, 2, 'the token appears more than once');
  assert.ok(line.endsWith(`--root-pin ${info.rootPin} --name web-1'`));
  // One pair of single quotes around the script: nothing inside can end them.
  assert.equal(line.slice(line.indexOf("sh -c '") + 7, -1).includes("'"), false);
  assert.match(line, new RegExp(`echo "${info.caCertSha256}  \\$d/ca.pem" \\| sha256sum -c --status`));
  assert.match(line, / executable --server "https:\/\/fleet\.example:8443" --ca-pin /);
});

test('a value that could end the quotes or make the shell expand something is refused, not escaped', () => {
  for (const [what, opts] of [
    ['url', { info: { ...info, url: "https://a'b:8443" } }],
    ['url', { info: { ...info, url: 'https://$(reboot):8443' } }],
    ['hash', { info: { ...info, caCertSha256: 'ab cd' } }],
    ['secret', { secret: "mjt_x'; rm -rf ~; '" }],
    ['name', { name: 'web 1' }],
  ] as const) {
    assert.throws(
      () => installLine({ ...{ info, secret, agent: 'bundle' as const }, ...opts }),
      /cannot go into an installer line/,
      what,
    );
  }
});
