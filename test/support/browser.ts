import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { DEADLINE_MS } from './processes.js';

/** Debian's Chromium: `.ci/run` installs it; the console tests drive nothing else. */
export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the console tests need ${CHROMIUM} (apt-get install chromium); .ci/run installs it`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * What a page did that a console must never let it do: open a dialog, or run script a name or
 * note carried (which would set `window.__pwned`). Collected for the whole life of the page.
 */
export function watchForInjection(page: Page): { dialogs: string[]; pageErrors: string[] } {
  const seen = { dialogs: [] as string[], pageErrors: [] as string[] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (err) => seen.pageErrors.push(err.message));
  page.setDefaultTimeout(DEADLINE_MS);
  return seen;
}
