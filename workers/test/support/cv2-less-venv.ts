/**
 * Test support: the founding bug's interpreter, a virtual environment of the workers' own interpreter
 * (testPython(): the set-up's record, pip venv or Debian's packages alike) that has its numpy and torch
 * but not cv2. `addCv2()` then makes the real cv2 importable in that same interpreter.
 * Built by scripts/make-venv-without.py (a .pth file pointing at symlinks to the base's packages).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { realWorkersPython, whyNoRealWorkers } from './prerequisites.js';

const run = promisify(execFile);
const SCRIPT = path.join(import.meta.dirname, '..', '..', '..', 'scripts', 'make-venv-without.py');

export interface Cv2LessVenv {
  /** The venv's interpreter (what the workers run). */
  python: string;
  dir: string;
  /** Makes cv2 importable in this same venv. */
  addCv2(): Promise<void>;
}

/** Why the cv2-less venv cannot be built here, or null. */
export function whyNoCv2LessVenv(): string | null {
  if (process.platform === 'win32') return 'Windows (the venv helper links packages with symlinks)';
  return whyNoRealWorkers();
}

export async function buildCv2LessVenv(dir: string): Promise<Cv2LessVenv> {
  const base = realWorkersPython();
  const { stdout } = await run(base, [SCRIPT, dir, 'cv2'], { timeout: 120_000 });
  const made = JSON.parse(stdout) as { python: string };
  return {
    python: made.python,
    dir,
    async addCv2() {
      await run(base, [SCRIPT, '--restore', dir], { timeout: 60_000 });
    },
  };
}
