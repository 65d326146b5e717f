/**
 * Fan-out's decoding promise: the frames of a video's segments, each decoded on its own from its
 * range, laid end to end, are the frames one pass samples (same pixels, same times, same order).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loopClip } from '../../../scripts/long-clip.js';
import { planSegments } from '../../jobs/segments.js';
import { extractFrames, type FrameSourceOptions } from '../../media/frame-source.js';
import { sampledTimes, scanFrameTimes } from '../../media/frame-times.js';
import { probeVideo } from '../../media/probe.js';
import { FIXTURES } from '../support/fixtures.js';
import { findTools } from '../support/tools.js';

const tools = findTools();
const MESSI = path.join(FIXTURES, 'messi-pan.mp4');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'posepool-segments-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Frame {
  timeMs: number;
  hash: string;
}

async function decode(file: string, fps: number, extra: Partial<FrameSourceOptions>): Promise<Frame[]> {
  const video = await probeVideo(tools.ffprobe, file);
  const frames: Frame[] = [];
  const source = extractFrames({
    ffmpeg: tools.ffmpeg,
    file,
    fps,
    maxFrames: 100_000,
    width: video.width,
    height: video.height,
    pixels: 'rgb24',
    durationMs: video.durationMs,
    ...extra,
  });
  for await (const f of source) frames.push({ timeMs: f.timeMs, hash: createHash('sha1').update(f.data).digest('hex') });
  return frames;
}

describe('fan-out segments decode to one pass, frame for frame', () => {
  const cases: [string, () => string, number][] = [
    ['mp4 at its own rate', () => loopClip(tools.ffmpeg, tmp, MESSI), 30],
    ['mp4 sampled at 12 fps', () => path.join(tmp, 'loop.mp4'), 12],
    ['MPEG-TS (the first frame at 1.47 s) at 7 fps', () => loopClip(tools.ffmpeg, tmp, MESSI, 'ts'), 7],
  ];
  for (const [name, clip, fps] of cases) {
    it(name, async () => {
      const file = clip();
      const scan = await scanFrameTimes(tools.ffprobe, file);
      expect(scan).not.toBeNull();
      const onePass = await decode(file, fps, {});
      // The scan predicts the one pass's frames before anything is decoded.
      const predicted = sampledTimes(scan!.times, fps, 100_000);
      expect(predicted.map((t) => Math.round((t - scan!.times[0]) * 1000))).toEqual(onePass.map((f) => f.timeMs));

      const plans = planSegments(scan!.times, { fps, maxFrames: 100_000, segmentFrames: 40, batchSize: 8 });
      expect(plans.length).toBeGreaterThanOrEqual(2);
      const merged: Frame[] = [];
      for (const plan of plans) {
        const part = await decode(file, fps, { maxFrames: plan.count, range: plan.range ?? undefined });
        expect(part).toHaveLength(plan.count);
        merged.push(...part);
      }
      expect(merged).toEqual(onePass);
    });
  }

  it('a video whose packets have no times gets one segment (one pass)', async () => {
    const raw = path.join(tmp, 'raw.h264');
    execFileSync(tools.ffmpeg, [
      '-v',
      'error',
      '-y',
      '-i',
      path.join(FIXTURES, 'messi-pan.mp4'),
      '-c:v',
      'copy',
      '-bsf:v',
      'h264_mp4toannexb',
      raw,
    ]);
    const scan = await scanFrameTimes(tools.ffprobe, raw);
    const plans = planSegments(scan?.times ?? null, { fps: 30, maxFrames: 1000, segmentFrames: 8, batchSize: 8 });
    if (scan === null) expect(plans).toEqual([{ k: 0, first: 0, count: 1000, range: null }]);
    else expect(plans.reduce((n, p) => n + p.count, 0)).toBe((await decode(raw, 30, {})).length);
  });

  it('a file ffprobe cannot read gives no scan', async () => {
    expect(await scanFrameTimes(tools.ffprobe, path.join(tmp, 'missing.mp4'))).toBeNull();
  });
});
