/** The module table (pose-service/posepool_worker/python-modules.txt), read by the Node side of the set-up. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './repo.mjs';

export const MODULES_FILE = path.join(ROOT, 'pose-service', 'posepool_worker', 'python-modules.txt');

/** @typedef {{ name: string, pip: string, apt: string, neededBy: string }} ModuleRow */

/** @returns {ModuleRow[]} */
export function readModuleTable(file = MODULES_FILE) {
  /** @type {ModuleRow[]} */
  const rows = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.split('#', 1)[0].trim();
    if (!line) continue;
    const [name, pip, apt, neededBy] = line.split(/\s+/);
    rows.push({ name, pip, apt, neededBy });
  }
  return rows;
}

/**
 * "PY -m pip install opencv-python-headless (Debian/Ubuntu: apt-get install python3-opencv)" for missing import names.
 * @param {string} python
 * @param {string[]} missing
 * @param {ModuleRow[]} [table]
 */
export function installHint(python, missing, table = readModuleTable()) {
  const rows = table.filter((r) => missing.includes(r.name));
  if (rows.length === 0) return '`npm run setup`';
  return `${python} -m pip install ${rows.map((r) => r.pip).join(' ')} (Debian/Ubuntu: apt-get install ${rows.map((r) => r.apt).join(' ')})`;
}
