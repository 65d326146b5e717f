/**
 * Fan-out: a long video's sampled frames cut into segments that replicas pose apart (BullMQ child
 * jobs), then laid end to end. Each segment decodes its own range of the stored upload
 * (frame-source.ts, FrameRange) and holds a whole number of batches, so tracking restarts where it
 * would in one pass (at a batch start) and the merged frames are one pass's, frame for frame.
 */
import type { FrameRange } from '../media/frame-source.js';
import { sampledTimes } from '../media/frame-times.js';
import type { TimedFrameResult } from '../pipeline/pose-video.js';

export interface SegmentPlan {
  /** Segment number, from 0, in video order. */
  k: number;
  /** Index of its first frame among the video's sampled frames. */
  first: number;
  /** Sampled frames it holds (the last may hold fewer). */
  count: number;
  /** Its stretch of the video; null: from the start (segment 0 decodes as one pass does, stopping after `count`). */
  range: FrameRange | null;
}

/** Frames per segment: JOBS_SEGMENT_FRAMES rounded up to whole batches. */
export function segmentSize(segmentFrames: number, batchSize: number): number {
  return Math.max(1, Math.ceil(segmentFrames / batchSize)) * batchSize;
}

/** Whether a video of about `expected` sampled frames is worth scanning for a plan of more than one segment. */
export function mayFanOut(expected: number, segmentFrames: number, batchSize: number): boolean {
  return expected > segmentSize(segmentFrames, batchSize);
}

/**
 * Segments for the frames one pass would sample (frame times from the packets, frame-times.ts). Where
 * the times are unknown, or the frames fit one segment, one segment: the whole video, `maxFrames` at most.
 */
export function planSegments(
  frameTimes: readonly number[] | null,
  o: { fps: number; maxFrames: number; segmentFrames: number; batchSize: number },
): SegmentPlan[] {
  const size = segmentSize(o.segmentFrames, o.batchSize);
  const sampled = frameTimes ? sampledTimes(frameTimes, o.fps, o.maxFrames) : [];
  if (!frameTimes || sampled.length <= size) return [{ k: 0, first: 0, count: frameTimes ? sampled.length : o.maxFrames, range: null }];
  const t0S = frameTimes[0];
  const plans: SegmentPlan[] = [];
  for (let first = 0, k = 0; first < sampled.length; first += size, k++) {
    const count = Math.min(size, sampled.length - first);
    const toS = first + size < sampled.length ? sampled[first + size] : null;
    plans.push({ k, first, count, range: k === 0 ? null : { t0S, fromS: sampled[first], toS } });
  }
  return plans;
}

/** Segments' frames laid end to end, numbered as one pass numbers them. */
export function mergeSegmentFrames(segments: readonly (readonly TimedFrameResult[])[]): TimedFrameResult[] {
  const frames: TimedFrameResult[] = [];
  for (const segment of segments) for (const f of segment) frames.push({ ...f, index: frames.length });
  return frames;
}
