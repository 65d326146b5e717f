/**
 * Ceiling: the model in a loop inside Python (pose-service/bench/ceiling.py), frames already
 * decoded, no IPC, the threads a worker would get. For N workers on C cores a worker gets
 * floor(C / N) threads (POSE_THREADS=auto), so the N-worker ceiling is measured two ways:
 *   - alone: one process with floor(C / N) threads, times N (the "N × ceiling");
 *   - together: N such processes started together (a barrier lines up their timed passes), summed:
 *     what N workers can reach at best on the shared cores and memory.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FrameSet } from './clips.js';
import type { BenchContext } from './context.js';
import { startPythonScript } from './python-script.js';
import { median, type Spread, spread } from './stats.js';

export type CeilingMode = 'tracking' | 'single';

interface CeilingScriptResult {
  model: string;
  threads: number;
  torchThreads: number;
  batch: number;
  frames: number;
  loadMs: number;
  decodeMsPerFrame: number;
  modes: Record<
    CeilingMode,
    { fps: number[]; cpuMsPerFrame: number[]; coresUsed: number[]; inferencesPerFrame: number; posedPerFrame?: number }
  >;
  torch: string;
}

export interface CeilingResult {
  model: string;
  /** torch.__version__ of the interpreter that ran it. */
  torch: string;
  /** Frames posed per repetition. */
  frames: number;
  /** Processes run at once. */
  processes: number;
  threads: number;
  /** Frames/s of all processes together, per repetition (sum over processes). */
  fps: Record<CeilingMode, Spread>;
  /** CPU per frame (user + system, all threads), median over repetitions and processes. */
  cpuMsPerFrame: Record<CeilingMode, number>;
  /** CPU time ÷ wall time of all processes together: the cores the measurement actually got (≈ processes × threads when the machine is quiet). */
  coresUsed: Record<CeilingMode, number>;
  /** Per process, per mode, the raw frames/s. */
  perProcess: Record<CeilingMode, number[]>[];
  inferencesPerFrame: Record<CeilingMode, number>;
  /** Share of the frames posed with at least one person (median over processes). */
  posedPerFrame?: Record<CeilingMode, number>;
  decodeMsPerFrame: number;
  loadMs: number;
}

export async function runCeiling(
  ctx: BenchContext,
  model: string,
  frames: FrameSet,
  opts: { threads: number; processes: number; batch: number; limit?: number },
): Promise<CeilingResult> {
  const barrier = opts.processes > 1 ? mkdtempSync(path.join(ctx.workDir, 'barrier-')) : null;
  const args = [
    '--model',
    model,
    '--threads',
    String(opts.threads),
    '--frames',
    frames.dir,
    '--batch',
    String(opts.batch),
    '--reps',
    String(ctx.reps),
    '--modes',
    'tracking,single',
    ...(opts.limit ? ['--limit', String(opts.limit)] : []),
    ...(barrier ? ['--barrier', barrier] : []),
  ];
  try {
    const runs = Array.from({ length: opts.processes }, () => startPythonScript<CeilingScriptResult>(ctx, 'ceiling.py', args));
    if (barrier) {
      // Open the barrier once every process is loaded and warmed up; open it too when one failed,
      // so the others finish instead of waiting.
      let failed = false;
      for (const r of runs) r.done.catch(() => (failed = true));
      while (!failed && readdirSync(barrier).filter((n) => n.startsWith('ready.')).length < opts.processes) {
        await new Promise((r) => setTimeout(r, 20));
      }
      writeFileSync(path.join(barrier, 'go'), '');
    }
    const results = await Promise.all(runs.map((r) => r.done));
    const sumPerRep = (mode: CeilingMode) =>
      Array.from({ length: ctx.reps }, (_, i) => results.reduce((s, r) => s + (r.modes[mode].fps[i] ?? NaN), 0));
    return {
      model,
      torch: results[0].torch,
      frames: results[0].frames,
      processes: opts.processes,
      threads: results[0].threads,
      fps: { tracking: spread(sumPerRep('tracking')), single: spread(sumPerRep('single')) },
      cpuMsPerFrame: {
        tracking: median(results.flatMap((r) => r.modes.tracking.cpuMsPerFrame)),
        single: median(results.flatMap((r) => r.modes.single.cpuMsPerFrame)),
      },
      coresUsed: {
        tracking: results.reduce((s, r) => s + median(r.modes.tracking.coresUsed), 0),
        single: results.reduce((s, r) => s + median(r.modes.single.coresUsed), 0),
      },
      perProcess: results.map((r) => ({ tracking: r.modes.tracking.fps, single: r.modes.single.fps })),
      inferencesPerFrame: {
        tracking: results[0].modes.tracking.inferencesPerFrame,
        single: results[0].modes.single.inferencesPerFrame,
      },
      posedPerFrame: {
        tracking: median(results.map((r) => r.modes.tracking.posedPerFrame ?? Number.NaN)),
        single: median(results.map((r) => r.modes.single.posedPerFrame ?? Number.NaN)),
      },
      decodeMsPerFrame: results[0].decodeMsPerFrame,
      loadMs: results[0].loadMs,
    };
  } finally {
    if (barrier) rmSync(barrier, { recursive: true, force: true });
  }
}
