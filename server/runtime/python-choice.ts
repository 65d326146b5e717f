/**
 * The Python interpreter the workers run: POSE_PYTHON when set, else the set-up's recorded choice
 * (pose-service/.python-choice.json, written by `npm run setup` through scripts/check-python.py).
 *
 * The set-up only records an interpreter that imported every worker module (numpy, cv2, torch),
 * so reading the record here is how the server avoids "the first python3 on PATH" (which may lack them).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, REPO_ROOT } from '../config.js';

/** Where the set-up records its choice, relative to the repository root. */
export const PYTHON_CHOICE_RELATIVE = path.join('pose-service', '.python-choice.json');

export function pythonChoiceFile(repoRoot: string = REPO_ROOT): string {
  return path.join(repoRoot, PYTHON_CHOICE_RELATIVE);
}

export interface PythonChoice {
  /** sys.executable of the chosen interpreter (absolute). */
  python: string;
  /** Its version, e.g. "3.11.2". */
  version: string;
  /** Import name -> version of each module the check imported. */
  modules: Record<string, string>;
  /** ISO time of the last successful check. */
  checkedAt: string;
  /** How the set-up got it: env (POSE_PYTHON), venv, path, system, pip-venv, apt, py-launcher. */
  how: string;
  /** CUDA devices torch saw at the check (0 on CPU-only machines). */
  cudaDeviceCount: number;
  /** Interpreters the set-up tried and rejected, with the reason. */
  rejected: { python: string; reason: string }[];
}

/** The recorded choice file exists but cannot be used; the message says to run the set-up again. */
export class PythonChoiceError extends ConfigError {
  readonly code = 'PYTHON_CHOICE_INVALID';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super('POSE_PYTHON', `the set-up's record ${file} is unusable (${detail}); run \`npm run setup\` again, or set POSE_PYTHON`);
    this.name = 'PythonChoiceError';
  }
}

/** The recorded choice, or null when the set-up has not run. Throws PythonChoiceError on a corrupt record. */
export function readPythonChoice(file: string = pythonChoiceFile()): PythonChoice | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PythonChoiceError(file, (err as Error).message);
  }
  return parsePythonChoice(text, file);
}

export function parsePythonChoice(text: string, file = PYTHON_CHOICE_RELATIVE): PythonChoice {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PythonChoiceError(file, `not JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PythonChoiceError(file, 'not a JSON object');
  const r = raw as Record<string, unknown>;
  if (typeof r.python !== 'string' || r.python === '') throw new PythonChoiceError(file, 'no "python" path');
  const modules: Record<string, string> = {};
  if (r.modules && typeof r.modules === 'object') {
    for (const [name, version] of Object.entries(r.modules as Record<string, unknown>)) modules[name] = String(version);
  }
  const rejected = Array.isArray(r.rejected)
    ? r.rejected
        .filter((x): x is Record<string, unknown> => !!x && typeof x === 'object')
        .map((x) => ({ python: String(x.python ?? ''), reason: String(x.reason ?? '') }))
    : [];
  return {
    python: r.python,
    version: typeof r.version === 'string' ? r.version : 'unknown',
    modules,
    checkedAt: typeof r.checkedAt === 'string' ? r.checkedAt : '',
    how: typeof r.how === 'string' ? r.how : 'unknown',
    cudaDeviceCount: typeof r.cudaDeviceCount === 'number' && r.cudaDeviceCount >= 0 ? r.cudaDeviceCount : 0,
    rejected,
  };
}

export interface WorkerPython {
  python: string;
  source: 'POSE_PYTHON' | 'set-up';
  /** The record, when the set-up has run (also when POSE_PYTHON overrides it). */
  choice: PythonChoice | null;
}

/**
 * The interpreter the workers will use: POSE_PYTHON, else the recorded choice; null when neither
 * (the set-up has not run). A corrupt record is ignored when POSE_PYTHON is set.
 */
export function workerPython(env: NodeJS.ProcessEnv = process.env, file: string = pythonChoiceFile()): WorkerPython | null {
  const override = env.POSE_PYTHON?.trim();
  if (override) {
    let choice: PythonChoice | null = null;
    try {
      choice = readPythonChoice(file);
    } catch {
      choice = null;
    }
    return { python: override, source: 'POSE_PYTHON', choice };
  }
  const choice = readPythonChoice(file);
  return choice ? { python: choice.python, source: 'set-up', choice } : null;
}
