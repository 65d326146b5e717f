/** The upload's text fields, validated against the contract; a JSON job body (a finished tus upload) becomes the same fields. */
import { ApiError } from '../errors.js';
import { FIELD_VALUE_MAX_BYTES, safe } from './receive-upload.js';

export interface PoseRequestFields {
  role: string;
  fps: number;
  maxFrames: number;
  tracking: boolean;
  smoothing: boolean;
  /** Coaching angles per frame and per video (server/pipeline/coaching-angles.ts). */
  metrics: boolean;
}

const KNOWN = new Set(['role', 'fps', 'maxFrames', 'tracking', 'smoothing', 'metrics']);
/** Fields only POST /api/jobs takes (checked by the jobs route: server/jobs/webhook-target.ts). */
export const JOB_FIELDS = new Set(['callbackUrl']);
const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
export const MAX_FPS = 240;
/** One frame per 100 s of video: sparser asks would cost a decode of the file for next to nothing. */
export const MIN_FPS = 0.01;

export function parseFields(
  fields: Record<string, string>,
  limits: { defaultFps: number; defaultMaxFrames: number; maxFramesLimit: number },
  opts: { jobFields?: boolean } = {},
): PoseRequestFields {
  for (const name of Object.keys(fields)) {
    if (JOB_FIELDS.has(name)) {
      // The synchronous route answers with the result itself: a callback would be a second, silent answer.
      if (!opts.jobFields) bad(name, `${name} is a field of the jobs API only: this route answers with the result itself`);
      continue;
    }
    // A name the client made up is echoed only as letters, digits, '.', '-', '_' and spaces (the rest as '_').
    if (!KNOWN.has(name)) {
      const known = [...KNOWN, ...(opts.jobFields ? JOB_FIELDS : [])].join(', ');
      bad(safe(name).slice(0, 40), `unknown field "${safe(name).slice(0, 40)}"; known: ${known}`);
    }
  }
  const role = fields.role ?? 'rider';
  if (!ROLE.test(role)) bad('role', 'role must match ^[a-z][a-z0-9_-]{0,31}$');

  let fps = limits.defaultFps;
  if (fields.fps !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(fields.fps.trim())) bad('fps', 'fps must be a positive number');
    fps = Number(fields.fps);
    if (!(fps >= MIN_FPS && fps <= MAX_FPS)) bad('fps', `fps must be at least ${MIN_FPS} and at most ${MAX_FPS}`);
  }

  let maxFrames = limits.defaultMaxFrames;
  if (fields.maxFrames !== undefined) {
    if (!/^\d+$/.test(fields.maxFrames.trim())) bad('maxFrames', 'maxFrames must be a whole number');
    maxFrames = Number(fields.maxFrames);
    if (maxFrames < 1 || maxFrames > limits.maxFramesLimit) {
      bad('maxFrames', `maxFrames must be between 1 and ${limits.maxFramesLimit} (MAX_FRAMES_LIMIT)`);
    }
  }

  return {
    role,
    fps,
    maxFrames,
    tracking: bool(fields, 'tracking', true),
    smoothing: bool(fields, 'smoothing', true),
    metrics: bool(fields, 'metrics', false),
  };
}

/** An upload id as @tus/server makes them (16 random bytes in hex): the last segment of the upload's URL. */
export const UPLOAD_ID_PATTERN = '^[0-9a-f]{32}$';

/** POST /api/jobs with JSON: `uploadId` (a finished tus upload) and the multipart route's fields, as JSON strings, numbers or booleans. */
export interface UploadJobBody {
  uploadId: string;
  /** The other members as the multipart route's text fields, for parseFields (so a bad one gets the same 400). */
  fields: Record<string, string>;
}

export function parseUploadJobBody(body: unknown): UploadJobBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('BAD_REQUEST', 'the JSON body must be an object: {"uploadId": "…", "fps": …}');
  }
  const { uploadId, ...rest } = body as Record<string, unknown>;
  if (uploadId === undefined) {
    throw new ApiError('MISSING_VIDEO', 'a JSON body names its video with "uploadId" (a finished upload at /api/uploads)');
  }
  if (typeof uploadId !== 'string' || !new RegExp(UPLOAD_ID_PATTERN).test(uploadId)) {
    bad('uploadId', 'uploadId must be the id at the end of the upload URL (32 hex digits)');
  }
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(rest)) {
    const field = safe(name).slice(0, 40);
    if (!['string', 'number', 'boolean'].includes(typeof value)) bad(field, `field "${field}" must be a string, a number or a boolean`);
    const text = String(value);
    if (Buffer.byteLength(text) > FIELD_VALUE_MAX_BYTES)
      bad(field, `field "${field}" is too long (at most ${FIELD_VALUE_MAX_BYTES} bytes)`);
    fields[name] = text;
  }
  return { uploadId, fields };
}

function bool(fields: Record<string, string>, name: string, byDefault: boolean): boolean {
  const v = fields[name];
  if (v === undefined) return byDefault;
  if (/^(true|1|yes|on)$/i.test(v)) return true;
  if (/^(false|0|no|off)$/i.test(v)) return false;
  return bad(name, `${name} must be true or false`);
}

function bad(field: string, message: string): never {
  throw new ApiError('BAD_FIELD', message, { details: { field } });
}
