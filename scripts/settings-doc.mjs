#!/usr/bin/env node
// Writes the configuration reference into README.md from the same setting specs that parse
// flags and environment, so the documentation cannot drift from the code.
// `node scripts/settings-doc.mjs --check` exits 1 when README.md is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsMarkdown } from '../packages/cli/dist/settings-doc.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const updated = readme.replace(
  /(<!-- settings:(\w+) -->\n)[\s\S]*?(<!-- \/settings:\2 -->)/g,
  (_, open, name, close) => `${open}${settingsMarkdown(name)}\n${close}`,
);
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    console.error('README.md configuration reference is out of date: run node scripts/settings-doc.mjs');
    process.exit(1);
  }
} else writeFileSync(path, updated);
