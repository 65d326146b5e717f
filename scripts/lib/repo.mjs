/** Paths and small process helpers shared by the set-up scripts (plain Node, no build needed). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVICE_DIR = path.join(ROOT, 'pose-service');
export const CHOICE_FILE = path.join(SERVICE_DIR, '.python-choice.json');

/**
 * The interpreter the workers (and pytest) run: POSE_PYTHON, else the set-up's record.
 * The same rule as server/runtime/python-choice.ts (which the server and the doctor use).
 * @returns {{ python: string, source: 'POSE_PYTHON' | 'set-up' } | null}
 */
export function recordedPython(env = process.env, file = CHOICE_FILE) {
  const override = env.POSE_PYTHON?.trim();
  if (override) return { python: override, source: 'POSE_PYTHON' };
  if (!existsSync(file)) return null;
  try {
    const record = JSON.parse(readFileSync(file, 'utf8'));
    return typeof record.python === 'string' && record.python ? { python: record.python, source: 'set-up' } : null;
  } catch {
    return null;
  }
}

/**
 * A path (it has a separator), not a command name looked up on PATH.
 * @param {string} command
 */
export function isPathLike(command) {
  return command.includes('/') || command.includes('\\');
}

/**
 * "1.2 s"
 * @param {number} ms
 */
export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}
