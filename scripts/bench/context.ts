/** What every measurement needs: paths, the interpreter and media tools the server would use, the run's mode. */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../server/config.js';
import { resolveMediaTools } from '../../server/runtime/ffmpeg-path.js';
import { workerPython } from '../../server/runtime/python-choice.js';

export interface BenchContext {
  repo: string;
  /** bench-results/ (gitignored): raw JSON and the table. */
  resultsDir: string;
  /** bench-results/work/: clips and frames made for the run (kept between runs, rebuilt when missing). */
  workDir: string;
  python: string;
  pythonSource: string;
  ffmpeg: string;
  ffprobe: string;
  cores: number;
  quick: boolean;
  /** Timed repetitions per measurement. */
  reps: number;
  /** Extra environment for the server processes (e.g. NODE_OPTIONS from --server-node-options). */
  serverEnv: Record<string, string>;
  log(message: string): void;
}

export function makeContext(opts: { quick: boolean; reps?: number; serverEnv?: Record<string, string> }): BenchContext {
  const resultsDir = path.join(REPO_ROOT, 'bench-results');
  const workDir = path.join(resultsDir, 'work');
  mkdirSync(workDir, { recursive: true });
  const py = workerPython();
  const tools = resolveMediaTools();
  const started = Date.now();
  return {
    repo: REPO_ROOT,
    resultsDir,
    workDir,
    python: py?.python ?? (process.platform === 'win32' ? 'python' : 'python3'),
    pythonSource: py ? py.source : 'PATH (no set-up record: run `npm run setup`)',
    ffmpeg: tools.ffmpeg.path,
    ffprobe: tools.ffprobe.path,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    quick: opts.quick,
    reps: opts.reps ?? (opts.quick ? 2 : 3),
    serverEnv: opts.serverEnv ?? {},
    log(message: string) {
      const t = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
      const load = os.loadavg()[0].toFixed(1);
      process.stderr.write(`[bench ${t}s load ${load}] ${message}\n`);
    },
  };
}
