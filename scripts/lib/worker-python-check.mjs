/**
 * `npm start`'s look at the workers' interpreter. It never installs anything and never asks a package
 * index: it imports the worker modules with the interpreter the server will run (POSE_PYTHON, else the
 * set-up's record) and says what it found in one line. A broken interpreter is a warning, not a reason
 * to refuse to start: the server starts, /health answers 503 naming the same cause, and the pool
 * becomes ready without a restart once the interpreter is mended.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { installHint } from './python-modules.mjs';
import { isPathLike, ROOT, recordedPython } from './repo.mjs';

const CHECK = path.join(ROOT, 'scripts', 'check-python.py');

/**
 * What scripts/check-python.py --json prints (the fields read here).
 * @typedef {{ ok: boolean, version: string, modules: Record<string, string>, missing: Record<string, string>, workerMissing: string[], tooOld: boolean }} PythonCheck
 */

/**
 * @param {{ env?: NodeJS.ProcessEnv, search: () => number, say: (m: string) => void, warn: (m: string) => void }} io
 *   search: the set-up in look-only mode (records the first interpreter that has the modules); its exit status
 * @returns {{ ok: boolean, python: string | null }}
 */
export function checkWorkerPython({ env = process.env, search, say, warn }) {
  let chosen = recordedPython(env);
  if (chosen?.source === 'POSE_PYTHON' && isPathLike(chosen.python) && !existsSync(chosen.python)) {
    // The server refuses this configuration itself, naming the variable (exit 2).
    return { ok: false, python: chosen.python };
  }
  if (!chosen || (isPathLike(chosen.python) && !existsSync(chosen.python))) {
    say(
      chosen
        ? `the recorded interpreter ${chosen.python} is gone: looking for another (no installs)`
        : 'no interpreter recorded yet: looking for one (no installs)',
    );
    search();
    chosen = recordedPython(env);
    if (!chosen || !existsSync(chosen.python)) {
      warn(
        "no Python interpreter here can import the workers' modules (numpy, cv2, torch). The server starts anyway and " +
          '/health answers 503 with the cause until it is fixed. Fix: `npm run setup` (makes or installs one), or set POSE_PYTHON.',
      );
      return { ok: false, python: null };
    }
  }
  const r = spawnSync(chosen.python, [CHECK, '--json'], { encoding: 'utf8', timeout: 120_000, env });
  /** @type {PythonCheck | null} */
  let result = null;
  try {
    result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    result = null;
  }
  const source = chosen.source === 'POSE_PYTHON' ? 'POSE_PYTHON' : "the set-up's record";
  if (result?.ok) {
    const modules = Object.entries(result.modules ?? {})
      .map(([name, version]) => `${name} ${version}`)
      .join(', ');
    say(`workers' Python: ${chosen.python} (${source}; Python ${result.version}; ${modules})`);
    return { ok: true, python: chosen.python };
  }
  const cause = result
    ? result.tooOld
      ? `is Python ${result.version}, too old (3.9 or newer is needed)`
      : `cannot import ${result.workerMissing.join(', ')} (${result.workerMissing.map((m) => result.missing[m]).join('; ')})`
    : `does not run as a Python 3 (${(r.error?.message ?? r.stderr ?? '').trim().split('\n').pop() || `exit status ${r.status}`})`;
  const fix =
    result && !result.tooOld
      ? `${installHint(chosen.python, result.workerMissing)}, or run \`npm run setup\``
      : '`npm run setup`, or set POSE_PYTHON';
  warn(
    `the workers' Python ${chosen.python} (${source}) ${cause}. The server starts anyway and /health answers 503 ` +
      `with this cause until it is fixed (no restart needed). Fix: ${fix}.`,
  );
  return { ok: false, python: chosen.python };
}
