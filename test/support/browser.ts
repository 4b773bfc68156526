import type { Page } from 'playwright-core';
import { DEADLINE_MS } from './processes.js';

// One launcher for the tests, the console benchmark and the screenshots: bench owns it.
export { CHROMIUM, launchChromium } from '@muster/bench/chromium';

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
