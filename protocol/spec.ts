/**
 * The protocol's names and codes, loaded from protocol.json: the one file that both the
 * TypeScript side (this module) and the Python worker (posepool_worker/protocol.py) read.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface ModelSpec {
  backend: string;
  keypointSet: string;
  needsDownload: boolean;
  testDouble?: boolean;
  /** Per-person fields this model adds (keys of `personExtras`). */
  extras?: string[];
}

/** A per-person field some models add after score, bbox and keypoints. */
export interface PersonExtraSpec {
  description: string;
  /** The keypoint set whose order a keypoint list follows (e.g. BlazePose's keypoints33: blazepose33). */
  keypointSet?: string;
  /** The JSON schema the server's response schema checks the field against. */
  schema: Record<string, unknown>;
}

export interface KeypointSet {
  names: string[];
  skeleton: [number, number][];
}

export interface ProtocolSpec {
  version: number;
  methods: { detect: 'detect'; health: 'health'; shutdown: 'shutdown' };
  notifications: { ready: 'worker/ready'; startupFailed: 'worker/startupFailed' };
  rpcErrorCodes: Record<RpcErrorName, number>;
  frameErrorCodes: Record<FrameErrorCode, string>;
  startupFailureTypes: Record<string, string>;
  frameEncodings: FrameEncoding[];
  /** W3C trace context across `detect` (detect.ts: DetectParams.traceparent, DetectResult.span). */
  traceContext: { param: 'traceparent'; resultField: 'span'; spanName: 'worker.detect' };
  keypointSets: Record<string, KeypointSet>;
  personExtras: Record<string, PersonExtraSpec>;
  models: Record<string, ModelSpec>;
}

export type RpcErrorName =
  | 'PARSE_ERROR'
  | 'INVALID_REQUEST'
  | 'METHOD_NOT_FOUND'
  | 'INVALID_PARAMS'
  | 'INTERNAL_ERROR'
  | 'SHUTTING_DOWN'
  | 'BATCH_FAILED';

/** Per-frame error codes: a frame that could not be posed carries one of these. */
export type FrameErrorCode =
  | 'FRAME_DECODE_FAILED'
  | 'INFERENCE_FAILED'
  | 'OUT_OF_MEMORY'
  | 'WORKER_CRASHED'
  | 'WORKER_TIMEOUT'
  | 'POSE_SERVICE_UNAVAILABLE'
  | 'CANCELLED';

export type FrameEncoding = 'jpeg' | 'rgb24' | 'file' | 'rgb24-file';

export const PROTOCOL: ProtocolSpec = require('./protocol.json');

export const MODEL_NAMES = Object.keys(PROTOCOL.models).filter((name) => !name.startsWith('$'));

export function keypointSetOf(model: string): KeypointSet {
  const spec = PROTOCOL.models[model];
  if (!spec) throw new Error(`unknown model ${model}`);
  return PROTOCOL.keypointSets[spec.keypointSet];
}

/** The declared per-person extras (personExtras without its $comment). */
export const PERSON_EXTRAS: Record<string, PersonExtraSpec> = Object.fromEntries(
  Object.entries(PROTOCOL.personExtras).filter(([name]) => !name.startsWith('$')),
);
