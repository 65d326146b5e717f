/**
 * Optional set-up step for `npm test` only: programs some tests drive, installed with apt-get where
 * that works (root or password-less sudo); elsewhere nothing is done and those tests say they are
 * skipped (under CI=true they fail, saying why). Never fails the set-up.
 *   Chromium      server/test/e2e/page.test.ts (Debian's `chromium`; POSEPOOL_CHROMIUM for another)
 *   redis-server  the Redis jobs tests (Debian's `redis-server`; POSEPOOL_REDIS_SERVER for another)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { aptInstall, aptPrefix } from './apt.mjs';

/**
 * @typedef {{ name: string, path: () => string | null, apt: string, usedBy: string, override: string }} TestTool
 */

/**
 * A command on PATH, as an absolute path.
 * @param {string} command
 * @returns {string | null}
 */
function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const full = path.join(dir || '.', command);
    if (dir && existsSync(full)) return full;
  }
  return null;
}

/** @type {TestTool[]} */
export const TEST_TOOLS = [
  {
    name: 'Chromium',
    path: () => {
      const p = process.env.POSEPOOL_CHROMIUM || '/usr/bin/chromium';
      return existsSync(p) ? p : null;
    },
    apt: 'chromium',
    usedBy: 'the page test',
    override: 'POSEPOOL_CHROMIUM',
  },
  {
    name: 'redis-server',
    path: () => process.env.POSEPOOL_REDIS_SERVER || onPath('redis-server'),
    apt: 'redis-server',
    usedBy: 'the Redis jobs tests',
    override: 'POSEPOOL_REDIS_SERVER',
  },
];

/**
 * Installs what is missing; returns the names still missing afterwards.
 * @param {(message: string) => void} [log]
 * @returns {string[]}
 */
export function ensureTestTools(log = (m) => console.log(`prepare: ${m}`)) {
  const missing = TEST_TOOLS.filter((t) => !t.path());
  if (missing.length === 0) return [];
  const prefix = aptPrefix();
  if (!prefix) {
    for (const t of missing) log(`no ${t.name} and no apt-get here: ${t.usedBy} will be skipped (install it, or set ${t.override})`);
    return missing.map((t) => t.name);
  }
  log(`installing Debian's ${missing.map((t) => t.apt).join(', ')} for ${missing.map((t) => t.usedBy).join(' and ')}`);
  aptInstall(
    prefix,
    missing.map((t) => t.apt),
    log,
  );
  const still = missing.filter((t) => !t.path());
  for (const t of still) log(`WARNING: ${t.name} could not be installed; ${t.usedBy} will be skipped (or fail under CI)`);
  return still.map((t) => t.name);
}
