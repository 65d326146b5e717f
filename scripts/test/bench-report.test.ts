import { describe, expect, it } from 'vitest';
import type { CeilingResult } from '../bench/ceiling.js';
import { type BenchResults, ceilingFor } from '../bench/report.js';

function ceiling(model: string, processes: number, threads: number, fps: number, cpuMs: number): CeilingResult {
  const spread = { median: fps, min: fps, max: fps, n: 1 };
  return {
    model,
    torch: '1.13.0',
    frames: 31,
    processes,
    threads,
    fps: { tracking: spread, single: spread },
    cpuMsPerFrame: { tracking: cpuMs, single: cpuMs },
    coresUsed: { tracking: processes * threads, single: processes * threads },
    perProcess: [],
    inferencesPerFrame: { tracking: 1.13, single: 1 },
    decodeMsPerFrame: 4,
    loadMs: 1000,
  };
}

describe('ceilingFor (what end-to-end rows are judged against)', () => {
  const before = [ceiling('movenet-thunder', 1, 1, 14, 70), ceiling('movenet-thunder', 2, 1, 28, 70)];

  it('is the ceiling measured before end to end when it was not measured again (quick run)', () => {
    const r = { ceiling: before } as unknown as BenchResults;
    expect(ceilingFor(r, 'movenet-thunder', 1, 1)).toEqual({ fps: 14, cpuMsPerFrame: 70 });
    expect(ceilingFor(r, 'movenet-lightning', 1, 1)).toBeUndefined();
  });

  it('is the mean of before and after end to end, matched by model, processes and threads', () => {
    const r = {
      ceiling: before,
      ceilingAfter: [ceiling('movenet-thunder', 2, 1, 32, 62), ceiling('movenet-thunder', 1, 1, 16, 60)],
    } as unknown as BenchResults;
    expect(ceilingFor(r, 'movenet-thunder', 1, 1)).toEqual({ fps: 15, cpuMsPerFrame: 65 });
    expect(ceilingFor(r, 'movenet-thunder', 1, 2)).toEqual({ fps: 30, cpuMsPerFrame: 66 }); // 1 thread, 2 processes
    expect(ceilingFor(r, 'movenet-thunder', 1, 1, 'single')).toEqual({ fps: 15, cpuMsPerFrame: 65 }); // one pass (the peer's ratio)
  });
});
