/**
 * One video through the pool: frames → payloads → batches → workers → results, in that one direction.
 *
 * ffmpeg decodes while batches are already being posed: at most `desired + 1` batches are in
 * flight, and the frame generator is not pulled further until one returns, so memory holds a
 * few batches whatever the video's length. Every sampled frame gets a result: a pose, or a
 * per-frame error (the pool retries a crashed or timed-out batch once before it gives up).
 */
import { type Attributes, context, SpanKind, trace } from '@opentelemetry/api';
import type { FastifyBaseLogger } from 'fastify';
import type { DetectOptions, FrameEncoding, FrameResult } from '../../protocol/index.js';
import { PoolError, type PosePool } from '../../workers/index.js';
import { ApiError } from '../errors.js';
import { type DecodedFrame, extractFrames, type FrameRange, type FrameSourceOutcome, sampleRate } from '../media/frame-source.js';
import type { VideoInfo } from '../media/probe.js';
import { recordWorkerSpan, spanFailed, startSpan, traceparentOf } from '../spans.js';
import { batches } from './batcher.js';
import type { FrameAngles, VideoAngles } from './coaching-angles.js';
import { FinalFrames, type FrameSink, type FrameTally } from './final-frames.js';
import { releasePayloads, type SpooledFrame, spoolFrames } from './frame-payload.js';
import { KeypointSmoother } from './one-euro.js';

export interface PoseVideoInput {
  requestId: string;
  file: string;
  video: VideoInfo;
  /** Requested sampling rate; capped at the source's. */
  fps: number;
  maxFrames: number;
  /** A fan-out segment: only this stretch of the sampled frames (indices then count from the stretch's first). */
  range?: FrameRange;
  tracking: boolean;
  smoothing: boolean;
  /** Coaching angles of each final frame, and their ranges over the video. */
  metrics?: boolean;
  signal: AbortSignal;
  log: FastifyBaseLogger;
  /** Called after each batch with frames done so far (progress for jobs / CLI). */
  onProgress?: (done: number, expected: number) => void;
  /** Durable jobs: each posed batch is saved as it returns, and a batch saved by an earlier run is not posed again. */
  checkpoints?: BatchCheckpoints;
  /**
   * Aborted to hand the video over (shutdown of a durable job): no further batch is sent, those in
   * flight finish and are saved, then poseVideo rejects with its reason.
   */
  drain?: AbortSignal;
  /** Final frames (posed, and smoothed where asked), in order, as soon as every frame before them is back; awaited (backpressure). */
  onFrames?: FrameSink;
  /** False: a frame is dropped once the sink has it (the result's `frames` is then empty; memory stays flat however long the video). */
  keepFrames?: boolean;
}

/** Batch n of a video (batches are numbered in decode order; their size is fixed per job). */
export interface BatchCheckpoints {
  saved(n: number): Promise<TimedFrameResult[] | undefined>;
  save(n: number, frames: TimedFrameResult[]): Promise<void>;
}

/** Per-frame codes that say no worker could take the batch: such a batch is posed again on resume, not saved. */
const NOT_SAVED = new Set(['POSE_SERVICE_UNAVAILABLE']);

export interface PoseVideoDeps {
  pool: Pick<PosePool, 'detect' | 'model' | 'desired'>;
  ffmpeg: string;
  batchSize: number;
  transport: FrameEncoding;
  /** The request's private directory (file transport). */
  tempDir: string;
  /** MAX_PIXELS, for ffmpeg's decoder (the probe has checked the video against it already). */
  maxPixels?: number;
  /** MAX_DECODED_FRAMES, enforced while decoding too (acceptance trusted the file's metadata). */
  maxDecodedFrames?: number;
}

export interface TimedFrameResult extends FrameResult {
  timeMs: number;
  /** Coaching angles (metrics=true), once the frame is final. */
  metrics?: FrameAngles;
}

export interface PoseVideoTiming {
  /** Wall time of the whole pipeline. */
  totalMs: number;
  /** Time the pipeline waited on ffmpeg for the next frame (decode not hidden by inference). */
  decodeWaitMs: number;
  /** Sum over batches of the workers' model time (pre/post-processing included). */
  inferenceMs: number;
  /** Sum over batches of the workers' payload decoding. */
  workerDecodeMs: number;
  /** Sum over batches of round trip minus the worker's own time: serialisation, pipes, queueing. */
  transportMs: number;
  batches: number;
}

export interface PoseVideoResult {
  frames: TimedFrameResult[];
  /** Frames sampled, with a person, with an error (counted as they became final, kept or not). */
  tally: FrameTally;
  /** metrics=true: each coaching angle's range over the video. */
  angles?: VideoAngles;
  sampleFps: number;
  /** Set when ffmpeg stopped early after some frames (a damaged tail). */
  decodeWarning?: string;
  timing: PoseVideoTiming;
}

/** Sampling intervals the video spans (each with a frame gives one sample), at most maxFrames; at least 1. */
export function expectedFrames(video: VideoInfo, fps: number, maxFrames: number): number {
  const fromDuration = video.durationMs > 0 ? Math.max(1, Math.ceil((video.durationMs / 1000) * fps - 1e-3)) : maxFrames;
  return Math.min(maxFrames, fromDuration);
}

/** One-euro smoothing over a video's frames, in order (in place). */
export function smoothFrames(frames: TimedFrameResult[], video: Pick<VideoInfo, 'width' | 'height'>): void {
  const smoother = new KeypointSmoother(video.width, video.height);
  for (const f of frames) f.persons = smoother.apply(f.persons, f.timeMs);
}

export async function poseVideo(input: PoseVideoInput, deps: PoseVideoDeps): Promise<PoseVideoResult> {
  const { video, log, signal } = input;
  const started = performance.now();
  const fps = sampleRate(input.fps, video);
  const expected = expectedFrames(video, fps, input.maxFrames);
  const options: DetectOptions = { tracking: input.tracking };
  const frames: (TimedFrameResult | undefined)[] = [];
  const final = new FinalFrames(frames, {
    smoothing: input.smoothing,
    metrics: input.metrics ?? false,
    video,
    sink: input.onFrames,
    keep: input.keepFrames ?? true,
  });
  const timing: PoseVideoTiming = { totalMs: 0, decodeWaitMs: 0, inferenceMs: 0, workerDecodeMs: 0, transportMs: 0, batches: 0 };
  const decodeOutcome: FrameSourceOutcome = {};
  let done = 0;

  log.info({ expected, fps, batchSize: deps.batchSize }, `Submitting ${expected} frames to the pose pool`);

  const pixels = deps.transport === 'rgb24' || deps.transport === 'rgb24-file' ? 'rgb24' : 'jpeg';

  const source = decodeSpan(
    extractFrames(
      {
        ffmpeg: deps.ffmpeg,
        file: input.file,
        fps,
        maxFrames: input.maxFrames,
        width: video.width,
        height: video.height,
        pixels,
        signal,
        reuseFrameBuffer: true, // spoolFrames below is done with each frame before it pulls the next
        socketDir: deps.tempDir, // the request's private directory: ffmpeg's frame socket lives and dies with it
        maxPixels: deps.maxPixels,
        durationMs: video.durationMs,
        maxDecodedFrames: deps.maxDecodedFrames,
        range: input.range,
      },
      decodeOutcome,
    ),
    decodeOutcome,
    { 'posepool.decode.fps': fps, 'posepool.decode.pixels': pixels },
  );

  const maxInFlight = Math.max(2, deps.pool.desired + 1);
  const inFlight = new Set<Promise<void>>();
  let fatal: unknown = null;

  const runBatch = async (spooled: SpooledFrame[], n: number): Promise<void> => {
    const payloads = spooled.map((s) => s.payload);
    const batch = spooled.map((s) => ({ index: s.payload.index, timeMs: s.timeMs }));
    // The batch's round trip as this side sees it (a wait for a worker and a retry included); the
    // worker's own span comes back in the result and is exported as its child.
    const span = startSpan('batch', {
      kind: SpanKind.CLIENT,
      attributes: { 'posepool.batch.index': n, 'posepool.batch.frames': batch.length, 'rpc.system': 'jsonrpc', 'rpc.method': 'detect' },
    });
    let outcome = 'posed';
    const t0 = performance.now();
    try {
      const saved = await input.checkpoints?.saved(n);
      if (saved) {
        for (const f of saved) frames[f.index] = f;
        final.advance();
        outcome = 'checkpoint';
        return;
      }
      const traceparent = traceparentOf(span);
      const result = await context.with(trace.setSpan(context.active(), span), () =>
        deps.pool.detect({ requestId: input.requestId, frames: payloads, options, ...(traceparent ? { traceparent } : {}) }, { signal }),
      );
      recordWorkerSpan(span, result.span);
      span.setAttributes({ 'posepool.worker.id': result.workerId, 'posepool.batch.attempts': result.attempts });
      if (result.workerPid !== undefined) span.setAttribute('posepool.worker.pid', result.workerPid);
      const roundTrip = performance.now() - t0;
      timing.inferenceMs += result.timing.inferMs;
      timing.workerDecodeMs += result.timing.decodeMs;
      timing.transportMs += Math.max(0, roundTrip - result.timing.totalMs);
      timing.batches += 1;
      const byIndex = new Map(result.frames.map((f) => [f.index, f]));
      for (const f of batch) {
        const r = byIndex.get(f.index);
        frames[f.index] = r
          ? { ...r, timeMs: f.timeMs }
          : {
              index: f.index,
              timeMs: f.timeMs,
              persons: [],
              error: { code: 'INFERENCE_FAILED', message: 'the worker returned no result for this frame' },
            };
      }
      const posed = batch.map((f) => frames[f.index] as TimedFrameResult);
      final.advance();
      const failed = posed.filter((f) => f.error).length;
      if (failed > 0) {
        outcome = 'frame-errors';
        span.setAttribute('posepool.batch.frames_failed', failed);
      }
      if (input.checkpoints && !posed.some((f) => f.error && NOT_SAVED.has(f.error.code))) await input.checkpoints.save(n, posed);
    } catch (err) {
      const code = err instanceof PoolError ? err.code : undefined;
      if (code === 'CANCELLED' || signal.aborted) {
        outcome = 'cancelled';
        fatal ??= err;
        return;
      }
      if (code === 'POOL_UNAVAILABLE' || code === 'POOL_BUSY' || code === 'POOL_CLOSED') {
        outcome = 'unavailable';
        const frameCode = 'POSE_SERVICE_UNAVAILABLE';
        for (const f of batch) {
          frames[f.index] = { index: f.index, timeMs: f.timeMs, persons: [], error: { code: frameCode, message: (err as Error).message } };
        }
        final.advance();
        if (code === 'POOL_CLOSED') fatal ??= err;
        return;
      }
      outcome = 'failed';
      spanFailed(span, err);
      fatal ??= err;
    } finally {
      span.setAttribute('posepool.batch.outcome', outcome);
      span.end();
      await releasePayloads(payloads);
      done += batch.length;
      input.onProgress?.(done, Math.max(expected, done));
    }
  };

  try {
    const iterator = batches(spoolFrames(source, deps.transport, deps.tempDir), deps.batchSize)[Symbol.asyncIterator]();
    for (let n = 0; ; n++) {
      while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      // A slow reader of the final frames holds the decoder back (a sink that failed, a reader gone, stops the video).
      await final.drained().catch((err) => {
        fatal ??= err;
      });
      if (fatal || signal.aborted || input.drain?.aborted) break;
      const t = performance.now();
      const next = await iterator.next();
      timing.decodeWaitMs += performance.now() - t;
      if (next.done) break;
      const p = runBatch(next.value, n).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (fatal || signal.aborted || input.drain?.aborted) await iterator.return?.(undefined);
  } finally {
    await Promise.allSettled(inFlight);
  }

  if (decodeOutcome.socketFallback) {
    log.warn(
      { reason: decodeOutcome.socketFallback },
      "raw frames came over ffmpeg's stdout, not its unix socket (slower; this ffmpeg keeps the pipe from now on)",
    );
  }
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new ApiError('TIMEOUT');
  if (fatal) throw fatal;
  if (input.drain?.aborted) throw input.drain.reason;

  // Every sampled frame has a slot: fill holes (should not happen) rather than drop frames silently.
  for (let i = final.count; i < frames.length; i++) {
    frames[i] ??= {
      index: i,
      timeMs: Math.round((i * 1000) / fps),
      persons: [],
      error: { code: 'INFERENCE_FAILED', message: 'no result was recorded for this frame' },
    };
  }
  final.advance();
  await final.drained();

  timing.totalMs = performance.now() - started;
  const kept = input.keepFrames === false ? [] : (frames as TimedFrameResult[]);
  const { sampled, failed } = final.tally;
  log.info({ frames: sampled, failed, ms: Math.round(timing.totalMs) }, `processed ${sampled - failed}/${sampled} frames`);
  return {
    frames: kept,
    tally: final.tally,
    ...(input.metrics ? { angles: final.angles() } : {}),
    sampleFps: fps,
    decodeWarning: decodeOutcome.error,
    timing,
  };
}

/**
 * The ffmpeg run as one `decode` span: from the first frame asked for to the end of the stream (or the
 * pipeline's stop), with the frames it gave and any warning it ended with.
 */
async function* decodeSpan(
  source: AsyncGenerator<DecodedFrame>,
  outcome: FrameSourceOutcome,
  attributes: Attributes,
): AsyncGenerator<DecodedFrame> {
  const span = startSpan('decode', { attributes });
  let count = 0;
  try {
    for await (const frame of source) {
      count++;
      yield frame;
    }
  } catch (err) {
    spanFailed(span, err);
    throw err;
  } finally {
    span.setAttribute('posepool.decode.frames', count);
    if (outcome.error) span.setAttribute('posepool.decode.warning', outcome.error);
    if (outcome.socketFallback) span.setAttribute('posepool.decode.socket_fallback', outcome.socketFallback);
    span.end();
  }
}
