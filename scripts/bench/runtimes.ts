/**
 * The same ceiling (1 process × 1 thread, frames decoded, no IPC) with every torch this machine has:
 * the workers' interpreter, any other the set-up would consider (pose-service/.venv, python3 on PATH,
 * /usr/bin/python3) and those given with --pythons, one per torch version. Say torch 1.13 from
 * Debian's packages next to torch 2.x from a pip venv: the CPU path (MoveNet's frozen oneDNN graph) is
 * chosen for both, and this is where the two are compared on the same frames.
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { type CeilingResult, runCeiling } from './ceiling.js';
import type { FrameSet } from './clips.js';
import type { BenchContext } from './context.js';

export interface TorchRuntime {
  python: string;
  torch: string;
  /** The interpreter the workers run (POSE_PYTHON or the set-up's record). */
  workers: boolean;
}

/** Interpreters that import numpy, cv2 and torch, the workers' first, one per torch version. */
export function findTorchRuntimes(ctx: BenchContext, extra: string[] = []): TorchRuntime[] {
  const candidates = [ctx.python, ...extra, path.join(ctx.repo, 'pose-service', '.venv', 'bin', 'python'), 'python3', '/usr/bin/python3'];
  const found: TorchRuntime[] = [];
  const seen = new Set<string>();
  for (const python of candidates) {
    // The same file under another name is not imported again (torch's import takes seconds).
    let real = python;
    try {
      real = realpathSync(python);
    } catch {
      /* a name on PATH */
    }
    if (seen.has(real)) continue;
    seen.add(real);
    let torch: string;
    try {
      torch = execFileSync(python, ['-c', 'import numpy, cv2, torch; print(torch.__version__)'], {
        encoding: 'utf8',
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      continue;
    }
    if (!found.some((r) => r.torch === torch)) found.push({ python, torch, workers: python === ctx.python });
  }
  return found;
}

export interface RuntimeRow {
  runtime: TorchRuntime;
  ceiling: CeilingResult;
}

export async function runRuntimes(
  ctx: BenchContext,
  runtimes: TorchRuntime[],
  models: string[],
  frames: FrameSet,
  opts: { batch: number; limit: number },
): Promise<RuntimeRow[]> {
  const rows: RuntimeRow[] = [];
  for (const runtime of runtimes) {
    for (const model of models) {
      ctx.log(`torch ${runtime.torch} (${runtime.python}): ceiling of ${model}, 1 process × 1 thread`);
      rows.push({
        runtime,
        ceiling: await runCeiling({ ...ctx, python: runtime.python }, model, frames, { threads: 1, processes: 1, ...opts }),
      });
    }
  }
  return rows;
}
