import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { settingsMarkdown } from './settings-doc.js';

test('README.md documents every flag and variable exactly as the code reads them', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const group of ['server', 'agent', 'admin']) {
    const section = new RegExp(
      `<!-- settings:${group} -->\\n([\\s\\S]*?)\\n<!-- /settings:${group} -->`,
    ).exec(readme);
    assert.ok(section, `README.md has no settings:${group} section`);
    assert.equal(
      section[1],
      settingsMarkdown(group),
      `README.md ${group} settings are stale: run node scripts/settings-doc.mjs`,
    );
  }
});
