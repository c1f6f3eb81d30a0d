// Headless Chromium that reaches nothing but 127.0.0.1, shared by the playground drivers:
// every other host goes to a proxy that is not there (127.0.0.1:9) and resolves to
// nothing; the drivers also route away any request the page still makes elsewhere.
import { chromium } from 'playwright-core';

export const TIMEOUT = 30_000;

const LOOPBACK = new Set(['127.0.0.1']);

export const isLocal = (url) =>
  url.startsWith('data:') || url.startsWith('blob:') || url === 'about:blank' ||
  LOOPBACK.has(new URL(url).hostname);

export function launchOffline(userDataDir, executablePath) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    chromiumSandbox: false,
    viewport: { width: 1400, height: 850 },
    timeout: TIMEOUT,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // No network but loopback: a dead proxy for everything else, and no name resolves.
      '--proxy-server=http://127.0.0.1:9',
      '--proxy-bypass-list=127.0.0.1',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}
