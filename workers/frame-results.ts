/**
 * A batch's per-frame results, made whole: one result per frame sent, in the order sent. A frame the
 * worker did not answer for gets an error instead of disappearing.
 */
import type { DetectResult, FrameErrorCode, FramePayload, FrameResult } from '../protocol/index.js';

/** The worker's results re-ordered to match `sent`, with a missing frame filled as an error. */
export function orderFrameResults(sent: readonly FramePayload[], result: DetectResult): DetectResult {
  const byIndex = new Map<number, FrameResult>();
  for (const frame of result.frames ?? []) if (!byIndex.has(frame.index)) byIndex.set(frame.index, frame);
  const inOrder = result.frames?.length === sent.length && sent.every((f, i) => result.frames[i]?.index === f.index);
  if (inOrder) return result;
  return {
    ...result,
    frames: sent.map(
      (f) =>
        byIndex.get(f.index) ?? {
          index: f.index,
          persons: [],
          error: { code: 'INFERENCE_FAILED', message: 'the worker returned no result for this frame' },
        },
    ),
  };
}

/** Every frame of the batch as failed with `code` (no frame is lost when a batch cannot be posed). */
export function failedFrameResults(sent: readonly FramePayload[], code: FrameErrorCode, message: string): DetectResult {
  return {
    frames: sent.map((f) => ({ index: f.index, persons: [], error: { code, message } })),
    timing: { decodeMs: 0, inferMs: 0, totalMs: 0 },
  };
}
