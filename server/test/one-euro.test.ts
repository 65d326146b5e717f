import { describe, expect, it } from 'vitest';
import type { Person } from '../../protocol/index.js';
import { KeypointSmoother, MOVENET_ONE_EURO, OneEuroFilter } from '../pipeline/one-euro.js';

const person = (x: number, y: number): Person => ({ score: 0.9, bbox: [x, y, 1, 1], keypoints: [[x, y, 0.8]] });

describe('one-euro smoothing', () => {
  it('passes the first value through and damps jitter on a still target', () => {
    const f = new OneEuroFilter(MOVENET_ONE_EURO);
    expect(f.apply(0.5, 1)).toBe(0.5);
    const out: number[] = [];
    for (let i = 1; i <= 30; i++) out.push(f.apply(0.5 + (i % 2 ? 0.0005 : -0.0005), i * 33_333 + 1));
    const spread = Math.max(...out.slice(10)) - Math.min(...out.slice(10));
    // Raw jitter spans 0.001; the filter (tuned for fast sport motion: beta 300) cuts it clearly.
    expect(spread).toBeLessThan(0.001 * 0.8);
  });

  it('follows fast motion closely (high beta)', () => {
    const f = new OneEuroFilter(MOVENET_ONE_EURO);
    let last = 0;
    for (let i = 0; i <= 30; i++) last = f.apply(i * 0.02, i * 33_333 + 1);
    expect(Math.abs(last - 0.6)).toBeLessThan(0.02);
  });

  it('smooths in normalised coordinates, keeps scores, resets on a frame without a person', () => {
    const s = new KeypointSmoother(1000, 500);
    const a = s.apply([person(500, 250)], 0);
    expect(a[0].keypoints[0]).toEqual([500, 250, 0.8]);
    const b = s.apply([person(504, 252)], 100);
    expect(b[0].keypoints[0][0]).toBeGreaterThan(500);
    expect(b[0].keypoints[0][0]).toBeLessThan(504);
    expect(b[0].keypoints[0][2]).toBe(0.8);
    expect(s.apply([], 200)).toEqual([]);
    expect(s.apply([person(100, 100)], 300)[0].keypoints[0]).toEqual([100, 100, 0.8]);
  });
});
