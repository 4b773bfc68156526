import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium (`.ci/run` installs it). The one launcher the console tests, the console
 * benchmark and the README's screenshots all use, so they drive the same browser the same way.
 */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, no sandbox (containers run as root), nothing that reaches the network by itself. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`this needs Chromium at ${CHROMIUM} (apt-get install chromium); .ci/run installs it`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}
