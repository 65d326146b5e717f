/**
 * Optional set-up step for `npm test` only: the headless Chromium that server/test/e2e/page.test.ts
 * drives (Debian/Ubuntu's `chromium` package, at /usr/bin/chromium). Installed with apt-get where
 * that works (root or password-less sudo); elsewhere nothing is done and the page test says it is
 * skipped (set POSEPOOL_CHROMIUM to use another Chromium). Never fails the set-up.
 */
import { existsSync } from 'node:fs';
import { aptInstall, aptPrefix } from './apt.mjs';

export const TEST_CHROMIUM = process.env.POSEPOOL_CHROMIUM || '/usr/bin/chromium';

/**
 * Returns true when the page test's Chromium is there (afterwards).
 * @param {(message: string) => void} [log]
 */
export function ensureTestBrowser(log = (m) => console.log(`prepare: ${m}`)) {
  if (existsSync(TEST_CHROMIUM)) return true;
  const prefix = aptPrefix();
  if (!prefix) {
    log(`no ${TEST_CHROMIUM} and no apt-get here: the page test will be skipped (install Chromium, or set POSEPOOL_CHROMIUM)`);
    return false;
  }
  log("installing Debian's chromium for the page test (apt-get install chromium)");
  const ok = aptInstall(prefix, ['chromium'], log) && existsSync(TEST_CHROMIUM);
  if (!ok) log('WARNING: chromium could not be installed; the page test will be skipped (or fail under CI)');
  return ok;
}
