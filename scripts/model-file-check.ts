/**
 * Runs scripts/verify-model-files.py with the workers' interpreter (POSE_PYTHON, else the set-up's record),
 * so a downloaded file is checked by the same loader the worker will use before it is moved into place.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../server/config.js';
import { type WorkerPython, workerPython } from '../server/runtime/python-choice.js';
import { DownloadError } from './download-file.js';
import type { FileCheck } from './model-sources.js';

export interface CheckResult {
  file: string;
  ok: boolean;
  check?: string;
  problem?: string;
  tensors?: number;
}

export interface FileChecker {
  /** Throws VERIFIER_UNAVAILABLE when the interpreter cannot import the backend code (call before downloading). */
  ready(): Promise<void>;
  /** Throws MANIFEST_MISMATCH naming the first failed check. `label(file)` names a file in messages. */
  verify(files: { path: string; check: FileCheck }[], label?: (file: string) => string): Promise<CheckResult[]>;
}

const SCRIPT = 'scripts/verify-model-files.py';

interface Run {
  code: number | null;
  results: CheckResult[];
  stderr: string;
  spawnError?: Error;
}

function runScript(python: string, args: string[], repoRoot: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(python, [path.join(repoRoot, SCRIPT), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', (err) => resolve({ code: null, results: [], stderr, spawnError: err }));
    child.on('close', (code) => {
      const results: CheckResult[] = [];
      for (const line of stdout.split('\n')) {
        if (!line.trim().startsWith('{')) continue;
        try {
          results.push(JSON.parse(line) as CheckResult);
        } catch {
          // not one of the script's lines
        }
      }
      resolve({ code, results, stderr });
    });
  });
}

/** `python`: the interpreter (default: the workers'); `repoRoot` resolves the script and relative manifests. */
export function pythonFileChecker(opts: { python?: string; repoRoot?: string; env?: NodeJS.ProcessEnv } = {}): FileChecker {
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  let readyOnce: Promise<string> | undefined;
  const setupFix = 'run `npm run setup` (or set POSE_PYTHON to a Python with torch)';

  const resolvePython = async (): Promise<string> => {
    let python = opts.python;
    if (!python) {
      let chosen: WorkerPython | null;
      try {
        chosen = workerPython(opts.env ?? process.env);
      } catch (err) {
        throw new DownloadError('VERIFIER_UNAVAILABLE', `${(err as Error).message}`);
      }
      if (!chosen)
        throw new DownloadError(
          'VERIFIER_UNAVAILABLE',
          `downloads are checked with the workers' Python, and none is recorded: ${setupFix}`,
        );
      python = chosen.python;
    }
    const run = await runScript(python, ['--imports'], repoRoot);
    if (run.code !== 0) {
      const why = run.spawnError?.message ?? run.results[0]?.problem ?? (run.stderr.trim().split('\n').pop() || `exit ${run.code}`);
      throw new DownloadError(
        'VERIFIER_UNAVAILABLE',
        `downloads are checked with the workers' Python (${python}), which cannot run the check: ${why}; ${setupFix}`,
      );
    }
    return python;
  };

  /** The checked interpreter, found once; a failure is not kept, so the next call looks again. */
  const checkedPython = async (): Promise<string> => {
    readyOnce ??= resolvePython();
    try {
      return await readyOnce;
    } catch (err) {
      readyOnce = undefined;
      throw err;
    }
  };

  return {
    async ready() {
      await checkedPython();
    },
    async verify(files, label = (f) => f) {
      const python = await checkedPython();
      const args: string[] = [];
      for (const f of files) {
        if (f.check.kind === 'checkpoint') args.push('--checkpoint', f.check.format, path.resolve(repoRoot, f.check.manifest), f.path);
        else args.push('--regressor', f.path);
      }
      const run = await runScript(python, args, repoRoot);
      const failed = run.results.find((r) => !r.ok);
      if (failed)
        throw new DownloadError('MANIFEST_MISMATCH', `${label(failed.file)}: ${failed.check ? `${failed.check}: ` : ''}${failed.problem}`);
      if (run.code !== 0 || run.results.length !== files.length) {
        const why = run.spawnError?.message ?? (run.stderr.trim().split('\n').slice(-3).join(' ') || `exit ${run.code}`);
        throw new DownloadError('VERIFIER_UNAVAILABLE', `the file check (${SCRIPT}) did not complete: ${why}`);
      }
      return run.results;
    },
  };
}
