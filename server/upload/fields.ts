/** The upload's text fields, validated against the contract. */
import { ApiError } from '../errors.js';
import { safe } from './receive-upload.js';

export interface PoseRequestFields {
  role: string;
  fps: number;
  maxFrames: number;
  tracking: boolean;
  smoothing: boolean;
}

const KNOWN = new Set(['role', 'fps', 'maxFrames', 'tracking', 'smoothing']);
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

  return { role, fps, maxFrames, tracking: bool(fields, 'tracking'), smoothing: bool(fields, 'smoothing') };
}

function bool(fields: Record<string, string>, name: string): boolean {
  const v = fields[name];
  if (v === undefined) return true;
  if (/^(true|1|yes|on)$/i.test(v)) return true;
  if (/^(false|0|no|off)$/i.test(v)) return false;
  return bad(name, `${name} must be true or false`);
}

function bad(field: string, message: string): never {
  throw new ApiError('BAD_FIELD', message, { details: { field } });
}
