import { describe, expect, it } from 'vitest';
import { mayFanOut, mergeSegmentFrames, planSegments, segmentSize } from '../jobs/segments.js';
import { sampledTimes } from '../media/frame-times.js';

/** Frame times of a constant-rate clip: n frames at `rate`, the first at `t0`. */
const clip = (n: number, rate: number, t0 = 0) => Array.from({ length: n }, (_, i) => t0 + i / rate);

describe('sampledTimes: the sampling filter’s rule on frame times', () => {
  it('keeps every frame at the source rate and one per interval below it', () => {
    expect(sampledTimes(clip(30, 30), 30, 1000)).toHaveLength(30);
    expect(sampledTimes(clip(30, 30), 10, 1000)).toEqual(clip(10, 10).map((t) => expect.closeTo(t, 9)));
  });

  it('counts intervals from the first frame, drops nothing for a gap and stops at maxFrames', () => {
    const vfr = [5, 5.04, 5.08, 5.62, 5.66];
    expect(sampledTimes(vfr, 10, 1000)).toEqual([5, 5.62]);
    expect(sampledTimes(vfr, 25, 1000)).toEqual(vfr);
    expect(sampledTimes(clip(100, 30), 30, 7)).toHaveLength(7);
    expect(sampledTimes([], 30, 7)).toEqual([]);
  });
});

describe('planSegments', () => {
  it('rounds a segment up to whole batches', () => {
    expect(segmentSize(256, 8)).toBe(256);
    expect(segmentSize(100, 16)).toBe(112);
    expect(segmentSize(1, 16)).toBe(16);
    expect(mayFanOut(300, 256, 8)).toBe(true);
    expect(mayFanOut(256, 256, 8)).toBe(false);
  });

  it('one segment, the whole video, where the frame times are unknown or the frames fit', () => {
    const o = { fps: 30, maxFrames: 500, segmentFrames: 64, batchSize: 8 };
    expect(planSegments(null, o)).toEqual([{ k: 0, first: 0, count: 500, range: null }]);
    expect(planSegments(clip(60, 30), o)).toEqual([{ k: 0, first: 0, count: 60, range: null }]);
  });

  it('cuts the sampled frames into ranges that meet, the first from the start, the last to the end', () => {
    const times = clip(300, 30, 1.5);
    const plans = planSegments(times, { fps: 30, maxFrames: 1000, segmentFrames: 100, batchSize: 8 });
    expect(plans.map((p) => [p.first, p.count])).toEqual([
      [0, 104],
      [104, 104],
      [208, 92],
    ]);
    expect(plans[0].range).toBeNull();
    expect(plans[1].range).toEqual({ t0S: 1.5, fromS: times[104], toS: times[208] });
    expect(plans[2].range).toEqual({ t0S: 1.5, fromS: times[208], toS: null });
  });

  it('plans the frames one pass keeps: sampled below the source rate, and no further than maxFrames', () => {
    const plans = planSegments(clip(300, 30), { fps: 10, maxFrames: 70, segmentFrames: 32, batchSize: 4 });
    expect(plans.map((p) => p.count)).toEqual([32, 32, 6]);
    expect(plans[1].range?.fromS).toBeCloseTo(3.2, 9);
    expect(plans[2].range?.toS).toBeNull();
  });
});

describe('mergeSegmentFrames', () => {
  it('lays segments end to end and numbers the frames as one pass does', () => {
    const f = (index: number, timeMs: number) => ({ index, timeMs, persons: [] });
    const merged = mergeSegmentFrames([[f(0, 0), f(1, 33)], [f(0, 67)], [f(0, 100), f(1, 133)]]);
    expect(merged.map((x) => [x.index, x.timeMs])).toEqual([
      [0, 0],
      [1, 33],
      [2, 67],
      [3, 100],
      [4, 133],
    ]);
  });
});
