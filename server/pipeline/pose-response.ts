/** The contract's 200 body, assembled from the pipeline's results. */
import { type FrameResult, PERSON_EXTRAS, PROTOCOL } from '../../protocol/index.js';
import type { PoolModelInfo } from '../../workers/index.js';
import type { VideoInfo } from '../media/probe.js';
import { withoutPaths } from '../public-text.js';
import type { FrameAngles, VideoAngles } from './coaching-angles.js';
import type { PoseVideoResult, PoseVideoTiming } from './pose-video.js';

export interface PoseResponse {
  id: string;
  role: string;
  video: { width: number; height: number; durationMs: number; fps: number; rotation: number; codec: string };
  model: {
    name: string;
    device: string;
    keypoints: string[];
    skeleton: [number, number][];
    /** Only for models that add per-person fields (BlazePose, ViTPose, HMR2). */
    extras?: Record<string, ModelExtra>;
  };
  frames: (FrameResult & { timeMs: number; metrics?: FrameAngles })[];
  summary: {
    framesSampled: number;
    framesWithPose: number;
    framesFailed: number;
    sampleFps: number;
    elapsedMs: number;
    timing: Omit<PoseVideoTiming, 'batches'> & { batches: number };
    warning?: string;
    metrics?: VideoAngles;
  };
}

/** A per-person field a model adds, as the response's `model.extras` describes it. */
export interface ModelExtra {
  description: string;
  /** For keypoint lists: the names, in order, and the skeleton's edges. */
  keypoints?: string[];
  skeleton?: [number, number][];
}

/** `model.extras` of the response: each extra field the model adds, described from protocol.json. */
export function describeExtras(names: string[]): Record<string, ModelExtra> {
  const out: Record<string, ModelExtra> = {};
  for (const name of names) {
    const spec = PERSON_EXTRAS[name];
    if (!spec) continue;
    const set = spec.keypointSet ? PROTOCOL.keypointSets[spec.keypointSet] : undefined;
    out[name] = { description: spec.description, ...(set ? { keypoints: set.names, skeleton: set.skeleton } : {}) };
  }
  return out;
}

/** A frame as the API shows it (error messages without server paths). */
export function publicFrame(f: FrameResult & { timeMs: number; metrics?: FrameAngles }): PoseResponse['frames'][number] {
  return {
    index: f.index,
    timeMs: f.timeMs,
    persons: f.persons,
    ...(f.error ? { error: { ...f.error, message: withoutPaths(f.error.message) } } : {}),
    ...(f.metrics ? { metrics: f.metrics } : {}),
  };
}

export function buildPoseResponse(a: {
  id: string;
  role: string;
  video: VideoInfo;
  model: PoolModelInfo;
  result: PoseVideoResult;
  elapsedMs: number;
}): PoseResponse {
  const { video, model, result } = a;
  const frames = result.frames.map(publicFrame);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    id: a.id,
    role: a.role,
    video: {
      width: video.width,
      height: video.height,
      durationMs: video.durationMs,
      fps: video.fps,
      rotation: video.rotation,
      codec: video.codec,
    },
    model: {
      name: model.name,
      device: model.device,
      keypoints: model.keypoints,
      skeleton: model.skeleton,
      ...(model.extras?.length ? { extras: describeExtras(model.extras) } : {}),
    },
    frames,
    summary: {
      framesSampled: result.tally.sampled,
      framesWithPose: result.tally.withPose,
      framesFailed: result.tally.failed,
      sampleFps: result.sampleFps,
      elapsedMs: Math.round(a.elapsedMs),
      timing: {
        totalMs: round(result.timing.totalMs),
        decodeWaitMs: round(result.timing.decodeWaitMs),
        inferenceMs: round(result.timing.inferenceMs),
        workerDecodeMs: round(result.timing.workerDecodeMs),
        transportMs: round(result.timing.transportMs),
        batches: result.timing.batches,
      },
      ...(result.decodeWarning ? { warning: `decoding stopped early: ${result.decodeWarning}` } : {}),
      ...(result.angles ? { metrics: result.angles } : {}),
    },
  };
}
