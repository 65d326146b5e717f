/**
 * A received video through the pool to the contract's response body. Shared by the synchronous
 * route, the jobs API and the CLI, so all three answer the same way.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { PoolModelInfo, PosePool, WorkerLastError } from '../../workers/index.js';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import type { FrameRange } from '../media/frame-source.js';
import type { VideoInfo } from '../media/probe.js';
import { inSpan } from '../spans.js';
import type { PoseRequestFields } from '../upload/fields.js';
import type { FrameSink } from './final-frames.js';
import { buildPoseResponse, type PoseResponse } from './pose-response.js';
import { type BatchCheckpoints, type PoseVideoResult, poseVideo } from './pose-video.js';

/** 503 POSE_SERVICE_UNAVAILABLE with the workers' causes and fixes. */
export function unavailableError(pool: Pick<PosePool, 'lastErrors'>): ApiError {
  const causes = pool.lastErrors().map(publicCause);
  const first = causes[0];
  const message = first
    ? `no pose worker is ready: ${first.type}: ${first.message}. Fix: ${first.hint}`
    : 'no pose worker is ready yet (workers are starting)';
  return new ApiError('POSE_SERVICE_UNAVAILABLE', message, {
    details: { lastError: first ?? null, lastErrors: causes },
    retryAfterS: 5,
  });
}

/** A worker's last error as an API error carries it: the cause and the fix, without paths or stderr. */
function publicCause(e: WorkerLastError): { type: string; message: string; hint: string } {
  return { type: e.type, message: e.message, hint: e.hint };
}

/** Per-frame codes that mean "no worker could pose it" (as opposed to the frame or the model failing). */
const UNSERVED = new Set(['POSE_SERVICE_UNAVAILABLE', 'WORKER_CRASHED', 'WORKER_TIMEOUT']);

/** Optional observer of finished videos (metrics). */
export interface FramesObserver {
  observeFrames(frames: PoseResponse['frames']): void;
}

export interface PoseRequest {
  id: string;
  file: string;
  fields: PoseRequestFields;
  video: VideoInfo;
  signal: AbortSignal;
  log: FastifyBaseLogger;
  /** performance.now() when the request (or job) began; elapsedMs counts from it. */
  started: number;
  onProgress?: (done: number, expected: number) => void;
  checkpoints?: BatchCheckpoints;
  drain?: AbortSignal;
  /** A fan-out segment's stretch of the video (fields.maxFrames is then its frame count). */
  range?: FrameRange;
  /** Final frames as they are posed, in order (streamed responses); awaited. */
  onFrames?: FrameSink;
  /** False: frames are not kept for the response body (they were streamed). */
  keepFrames?: boolean;
}

export interface PoseRequestDeps {
  pool: Pick<PosePool, 'detect' | 'model' | 'desired' | 'lastErrors' | 'isAvailable'>;
  config: Pick<Config, 'batchSize' | 'transport' | 'maxPixels' | 'maxDecodedFrames'>;
  ffmpeg: string;
  /** The request's private directory (file transport). */
  tempDir: string;
  observer?: FramesObserver;
}

export async function poseVideoRequest(req: PoseRequest, deps: PoseRequestDeps): Promise<PoseResponse> {
  const { result, model } = await poseVideoFrames(req, deps);
  const response = buildPoseResponse({
    id: req.id,
    role: req.fields.role,
    video: req.video,
    model,
    result,
    elapsedMs: performance.now() - req.started,
  });
  deps.observer?.observeFrames(response.frames);
  return response;
}

/** The frames of a request (or of a fan-out segment) and the model that posed them; 503 when no worker could pose any. */
export async function poseVideoFrames(req: PoseRequest, deps: PoseRequestDeps): Promise<{ result: PoseVideoResult; model: PoolModelInfo }> {
  const { pool } = deps;
  const model = pool.model();
  if (!model) throw unavailableError(pool);
  // The pipeline as one span: the decode and the batches inside it, side by side (they overlap).
  const attributes = { 'posepool.fps': req.fields.fps, 'posepool.max_frames': req.fields.maxFrames, 'posepool.model': model.name };
  const result = await inSpan('pose', { attributes }, async (span) => {
    const posed = await poseVideo(
      {
        requestId: req.id,
        file: req.file,
        video: req.video,
        fps: req.fields.fps,
        maxFrames: req.fields.maxFrames,
        tracking: req.fields.tracking,
        smoothing: req.fields.smoothing,
        metrics: req.fields.metrics,
        signal: req.signal,
        log: req.log,
        onProgress: req.onProgress,
        checkpoints: req.checkpoints,
        drain: req.drain,
        range: req.range,
        onFrames: req.onFrames,
        keepFrames: req.keepFrames,
      },
      {
        pool,
        ffmpeg: deps.ffmpeg,
        batchSize: deps.config.batchSize,
        transport: deps.config.transport,
        tempDir: deps.tempDir,
        maxPixels: deps.config.maxPixels,
        maxDecodedFrames: deps.config.maxDecodedFrames,
      },
    );
    span.setAttributes({
      'posepool.frames': posed.tally.sampled,
      'posepool.frames_failed': posed.tally.failed,
      'posepool.batches': posed.timing.batches,
      'posepool.sample_fps': posed.sampleFps,
    });
    return posed;
  });
  // Nothing posed for want of a worker (none was ready, or the workers died under the video and none is
  // ready now): 503 with the cause and Retry-After, not a 200 whose every frame is an error.
  const unserved = result.frames.length > 0 && result.frames.every((f) => f.error && UNSERVED.has(f.error.code));
  if (unserved && (result.frames.every((f) => f.error?.code === 'POSE_SERVICE_UNAVAILABLE') || !pool.isAvailable())) {
    throw unavailableError(pool);
  }
  return { result, model };
}
