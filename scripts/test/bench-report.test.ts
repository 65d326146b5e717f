import { describe, expect, it } from 'vitest';
import type { CeilingResult } from '../bench/ceiling.js';
import { type BenchResults, ceilingFor, renderReport } from '../bench/report.js';

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

describe('the blazepose section', () => {
  it('renders its own table, frames/s and model calls per frame by model and threads', () => {
    const r: BenchResults = {
      startedAt: '2026-12-07T00:00:00.000Z',
      quick: true,
      reps: 3,
      machine: { cpu: 'AMD EPYC', cores: 2, memoryGiB: 8, platform: 'linux', node: 'v20', python: '3.11' },
      source: { file: 'server/test/fixtures/vtest-3s.mp4', width: 768, height: 576, codec: 'h264' },
      frames: 31,
      batchSize: 8,
      defaults: { transport: 'rgb24-file', workers: 2, threads: 1 },
      serverNodeFlags: [],
      models: ['movenet-thunder'],
      loads: [{ section: 'start', load1: 0.5 }],
      ceiling: [],
      endToEnd: [],
      endToEndLong: [],
      transportEndToEnd: [],
      transport: null,
      baseline: null,
      scale: null,
      peer: [],
      blazepose: {
        clip: 'server/test/fixtures/messi-pan.mp4',
        width: 548,
        height: 342,
        rows: [ceiling('blazepose-lite', 1, 1, 40, 24), ceiling('blazepose-heavy', 1, 2, 12, 150)],
      },
      skipped: [],
    };
    const text = renderReport(r);
    expect(text).toContain(
      '### BlazePose: the ceiling, one process (frames decoded, no IPC), server/test/fixtures/messi-pan.mp4 (548x342)',
    );
    expect(text).toContain('| blazepose-lite | 1 | 40.0 | 25.0 ms | 40.0 | 1.13, 1.00 | n/a | 24.0 ms |');
    expect(text).toContain('| blazepose-heavy | 2 | 12.0 | 83.3 ms |');
  });
});
