/**
 * `detect`: a batch of frames in, one result per frame out, in the same order.
 *
 * A frame that cannot be posed does not fail its batch: its result carries `error` and `persons: []`.
 * Only a failure of the whole call (bad params, shutting down) is a JSON-RPC error.
 */
import { RequestType } from 'vscode-jsonrpc';
import { type FrameEncoding, type FrameErrorCode, PROTOCOL } from './spec.js';

export interface FramePayload {
  /** The frame's index among the sampled frames of its video (echoed back). */
  index: number;
  encoding: FrameEncoding;
  /** Pixel size of the upright frame. Required for rgb24 and rgb24-file; informative otherwise. */
  width: number;
  height: number;
  /** base64 of the JPEG bytes (jpeg) or of width*height*3 RGB bytes, row-major (rgb24). */
  data?: string;
  /**
   * Absolute path of a file in the server's private per-request directory: JPEG bytes (file), or
   * width*height*3 RGB bytes, row-major (rgb24-file). The server deletes it when the batch returns,
   * or when it gives up on the batch (the worker's result is then dropped).
   */
  path?: string;
}

export interface DetectOptions {
  /**
   * Video mode: the batch's frames are consecutive frames of one video, in order. MoveNet poses
   * each frame on a crop around the person found in the frame before it (tfjs-models' tracking);
   * the batch's first frame is detected afresh. Default true; false for unrelated still images.
   */
  tracking?: boolean;
  /** HMR2: include the 6890 SMPL vertices per person (large). Default false. */
  vertices?: boolean;
  /** ViTPose: flip test (average with the horizontally flipped crop). Default false. */
  flipTest?: boolean;
}

export interface DetectParams {
  /** The HTTP request (or job) this batch belongs to; used in the worker's log lines. */
  requestId: string;
  frames: FramePayload[];
  options?: DetectOptions;
  /**
   * W3C trace context (`00-<trace id>-<span id>-<flags>`) of the server's span for this batch
   * (protocol.json `traceContext.param`), sent only while the server traces and the span is sampled.
   * A worker given a sampled one answers with its own span (`DetectResult.span`); without it, nothing.
   */
  traceparent?: string;
}

/** [x, y, score]: pixels of the upright displayed frame; score 0..1. */
export type Keypoint = [number, number, number];

/** BlazePose: [x, y, z, visibility]: x, y in pixels of the upright frame, z at the scale of x (relative to the hips). */
export type Keypoint3D = [number, number, number, number];

/** BlazePose: [x, y, z] in metres, origin between the hips, the frame's orientation. */
export type WorldPoint = [number, number, number];

export interface Person {
  score: number;
  /** [x, y, width, height] in pixels. */
  bbox: [number, number, number, number];
  /** In the order of ReadyParams.model.keypoints. */
  keypoints: Keypoint[];
  /** BlazePose: its 33 keypoints (protocol.json keypointSets.blazepose33), with depth and visibility. */
  keypoints33?: Keypoint3D[];
  /** BlazePose: its 33 keypoints in metres (world coordinates). */
  worldKeypoints33?: WorldPoint[];
  /**
   * Models that give more add fields, each declared in protocol.json `personExtras` (with its JSON schema) and
   * listed in the model's `extras` (BlazePose: keypoints33, worldKeypoints33; HMR2: boxSource, smpl, camera,
   * joints3d, vertices; ViTPose: boxSource).
   */
  [extra: string]: unknown;
}

export interface FrameError {
  code: FrameErrorCode;
  message: string;
}

export interface FrameResult {
  index: number;
  persons: Person[];
  error?: FrameError;
}

export interface DetectTiming {
  /** Turning payloads into image arrays. */
  decodeMs: number;
  /** Pre-processing, model, post-processing. */
  inferMs: number;
  /** Whole call inside the worker. */
  totalMs: number;
}

/**
 * The worker's own span of one `detect` call (protocol.json `traceContext`): a child of the span named
 * by `traceparent`, in its trace, with a fresh span id. The server exports it with the rest of the trace.
 */
export interface WorkerSpan {
  /** protocol.json `traceContext.spanName`. */
  name: string;
  /** 32 lowercase hex digits: the traceparent's trace id. */
  traceId: string;
  /** 16 lowercase hex digits, random, not all zero. */
  spanId: string;
  /** The traceparent's span id. */
  parentSpanId: string;
  /** Wall clock (Unix epoch) in nanoseconds, as a decimal string (as OTLP/JSON sends it: past 2^53). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** Strings, numbers and booleans only (frames, payload decoding and model time, pid, model). */
  attributes: Record<string, string | number | boolean>;
}

export interface DetectResult {
  frames: FrameResult[];
  timing: DetectTiming;
  /** Only when the params carried a sampled `traceparent` (protocol.json `traceContext.resultField`). */
  span?: WorkerSpan;
}

export namespace DetectRequest {
  export const method = PROTOCOL.methods.detect;
  export const type = new RequestType<DetectParams, DetectResult, void>(method);
}
