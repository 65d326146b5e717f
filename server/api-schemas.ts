/**
 * JSON schemas of the HTTP API. The routes use them to validate requests (params) and responses
 * (server/routes/docs.ts validates every response that has a schema before sending it), and
 * @fastify/swagger turns the same objects into the OpenAPI document served at /docs.
 *
 * Objects allow additional properties where the contract says models may add fields (HMR2) and
 * where the health body may grow; the fields listed are required and typed.
 */

import { PERSON_EXTRAS } from '../protocol/index.js';
import { API_ERRORS } from './errors.js';
import { JOB_STATES } from './jobs/job.js';
import { CALLBACK_URL_MAX } from './jobs/webhook-target.js';
import { MAX_FPS, MIN_FPS, UPLOAD_ID_PATTERN } from './upload/fields.js';

const num = { type: 'number' } as const;
const int = { type: 'integer', minimum: 0 } as const;
const str = { type: 'string' } as const;

export const errorSchema = {
  description: 'Every non-2xx answer: one stable code from the catalogue, a message, the request id',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: true,
      properties: {
        code: { type: 'string', enum: Object.keys(API_ERRORS) },
        message: str,
        requestId: str,
      },
    },
  },
} as const;

const frameError = {
  type: 'object',
  required: ['code', 'message'],
  additionalProperties: true,
  properties: { code: str, message: str },
} as const;

/** The per-person fields some models add, each with the schema protocol.json declares for it (not required). */
const personExtras = Object.fromEntries(
  Object.entries(PERSON_EXTRAS).map(([name, spec]) => [name, { ...spec.schema, description: spec.description }]),
);

const person = {
  type: 'object',
  required: ['score', 'bbox', 'keypoints'],
  additionalProperties: true,
  properties: {
    score: num,
    bbox: { type: 'array', items: num, minItems: 4, maxItems: 4, description: '[x, y, w, h] in pixels of the upright frame' },
    keypoints: {
      type: 'array',
      description: 'one [x, y, score] per name in model.keypoints, in pixels of the upright frame',
      items: { type: 'array', items: num, minItems: 3 },
    },
    ...personExtras,
  },
} as const;

export const poseResponseSchema = {
  description: 'One result per sampled frame, in time order',
  type: 'object',
  required: ['id', 'role', 'video', 'model', 'frames', 'summary'],
  additionalProperties: true,
  properties: {
    id: str,
    role: str,
    video: {
      type: 'object',
      required: ['width', 'height', 'durationMs', 'fps', 'rotation', 'codec'],
      additionalProperties: true,
      properties: { width: int, height: int, durationMs: num, fps: num, rotation: num, codec: str },
    },
    model: {
      type: 'object',
      required: ['name', 'device', 'keypoints', 'skeleton'],
      additionalProperties: true,
      properties: {
        name: str,
        device: str,
        keypoints: { type: 'array', items: str },
        skeleton: { type: 'array', items: { type: 'array', items: int, minItems: 2, maxItems: 2 } },
        extras: {
          type: 'object',
          description:
            "the per-person fields this model adds (only when it adds any): each one's description, and for keypoint lists their names and skeleton",
          additionalProperties: {
            type: 'object',
            required: ['description'],
            additionalProperties: true,
            properties: {
              description: str,
              keypoints: { type: 'array', items: str },
              skeleton: { type: 'array', items: { type: 'array', items: int, minItems: 2, maxItems: 2 } },
            },
          },
        },
      },
    },
    frames: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'timeMs', 'persons'],
        additionalProperties: true,
        properties: {
          index: int,
          timeMs: num,
          persons: { type: 'array', items: person },
          error: frameError,
          metrics: {
            type: 'object',
            description: 'with metrics=true: each angle in degrees (stanceWidth: a ratio), null where its keypoints are not trusted',
            additionalProperties: { type: ['number', 'null'] },
          },
        },
      },
    },
    summary: {
      type: 'object',
      required: ['framesSampled', 'framesWithPose', 'framesFailed', 'sampleFps', 'elapsedMs'],
      additionalProperties: true,
      properties: {
        framesSampled: int,
        framesWithPose: int,
        framesFailed: int,
        sampleFps: num,
        elapsedMs: num,
        timing: { type: 'object', additionalProperties: true },
        warning: str,
        metrics: {
          type: 'object',
          description: 'with metrics=true: per angle {min, mean, max, frames} over the frames that have it, or null',
          additionalProperties: true,
        },
      },
    },
  },
} as const;

const lastError = {
  anyOf: [
    { type: 'null' },
    {
      type: 'object',
      required: ['type', 'message', 'hint'],
      additionalProperties: true,
      properties: { type: str, message: str, hint: str },
    },
  ],
} as const;

export const healthSchema = {
  description: 'Readiness: the pool and each worker, with the real cause of a failure',
  type: 'object',
  required: ['status', 'ready', 'desired', 'workers'],
  additionalProperties: true,
  properties: {
    status: { type: 'string', enum: ['ready', 'starting', 'degraded', 'unavailable'] },
    ready: int,
    desired: int,
    workers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'state', 'pid', 'model', 'device', 'restarts', 'lastError'],
        additionalProperties: true,
        properties: {
          id: str,
          state: str,
          pid: { type: ['integer', 'null'] },
          model: str,
          device: { type: ['string', 'null'] },
          restarts: int,
          lastError,
        },
      },
    },
    jobs: {
      description: 'The jobs engine (memory, or redis with REDIS_URL); `lastError` names why it cannot serve jobs, and the fix',
      type: 'object',
      required: ['engine', 'status'],
      properties: {
        engine: { type: 'string', enum: ['memory', 'redis'] },
        status: { type: 'string', enum: ['ready', 'unavailable'] },
        lastError: { type: 'object', required: ['message', 'hint'], properties: { message: str, hint: str } },
      },
    },
    warning: str,
  },
} as const;

/** The multipart body of the upload and job routes (documentation: the fields are validated by upload/fields.ts). */
export function videoFormSchema(limits: { maxFramesLimit: number; defaultFps: number; defaultMaxFrames: number }) {
  return {
    type: 'object',
    required: ['video'],
    properties: {
      video: { type: 'string', format: 'binary', description: 'the video file; any container/codec ffmpeg decodes' },
      role: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$', default: 'rider', description: 'label echoed back' },
      fps: {
        type: 'number',
        minimum: MIN_FPS,
        maximum: MAX_FPS,
        default: limits.defaultFps,
        description: 'frames sampled per second of video, capped at the source rate',
      },
      maxFrames: {
        type: 'integer',
        minimum: 1,
        maximum: limits.maxFramesLimit,
        default: limits.defaultMaxFrames,
        description: 'cap on sampled frames (MAX_FRAMES_LIMIT bounds it)',
      },
      tracking: {
        type: 'boolean',
        default: true,
        description: 'MoveNet: pose each frame on a crop around the person found in the frame before (tracking)',
      },
      smoothing: { type: 'boolean', default: true, description: 'one-euro smoothing of keypoints over time' },
      metrics: {
        type: 'boolean',
        default: false,
        description:
          'coaching angles: `metrics` per frame (knee flexion, hip and shoulder lines to the board, torso inclination, stance width) and their min/mean/max in `summary.metrics`',
      },
    },
  } as const;
}

/** The JSON body of POST /api/jobs: a finished resumable upload and the multipart fields (upload/fields.ts validates them alike). */
export function uploadJobSchema(limits: { maxFramesLimit: number; defaultFps: number; defaultMaxFrames: number }) {
  // The jobs route's fields (callbackUrl included), less the file.
  const { video: _video, ...fields } = jobFormSchema(limits).properties;
  return {
    type: 'object',
    required: ['uploadId'],
    properties: {
      uploadId: {
        type: 'string',
        pattern: UPLOAD_ID_PATTERN,
        description: 'a finished resumable upload: the last segment of its URL (the Location of POST /api/uploads)',
      },
      ...fields,
    },
  } as const;
}

/** The multipart body of POST /api/jobs: the video form, and the job's webhook. */
export function jobFormSchema(limits: { maxFramesLimit: number; defaultFps: number; defaultMaxFrames: number }) {
  const form = videoFormSchema(limits);
  return {
    ...form,
    properties: {
      ...form.properties,
      callbackUrl: {
        type: 'string',
        format: 'uri',
        pattern: '^[hH][tT][tT][pP][sS]?://',
        maxLength: CALLBACK_URL_MAX,
        description:
          'http(s) URL that gets a signed POST when the job ends (job.succeeded, job.failed, job.cancelled). Its host must be in ' +
          'WEBHOOK_ALLOWED_HOSTS and WEBHOOK_SECRET must be set, else 400 CALLBACK_NOT_ALLOWED; no credentials in it (400 BAD_FIELD). ' +
          'Jobs only: the synchronous route answers 400 BAD_FIELD to it',
      },
    },
  } as const;
}

export const jobSchema = {
  description: 'A pose job: its state, progress and, once succeeded, the same body as the synchronous route',
  type: 'object',
  required: ['id', 'state', 'createdAt', 'progress', 'links'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', format: 'uuid' },
    state: { type: 'string', enum: JOB_STATES },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time', description: 'when a finished job is forgotten (JOBS_TTL_S)' },
    progress: {
      type: 'object',
      required: ['done', 'expected', 'fraction'],
      additionalProperties: false,
      properties: { done: int, expected: int, fraction: { type: 'number', minimum: 0, maximum: 1 } },
    },
    video: { type: 'object', additionalProperties: true },
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: true,
      properties: { code: str, message: str },
    },
    result: poseResponseSchema,
    links: {
      type: 'object',
      required: ['self', 'events'],
      additionalProperties: false,
      properties: { self: str, events: str },
    },
  },
} as const;

export const jobParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } },
} as const;

/** Standard error answers of a route, by status class. */
export const errorResponses = { '4xx': errorSchema, '5xx': errorSchema } as const;

/** Documented on every route that API_TOKEN protects (optional: open when API_TOKEN is unset). */
const bearerOptional: { [label: string]: string[] }[] = [{ bearer: [] }, {}];

/** Route schema of POST /api/upload-video-with-pose. */
export function uploadRouteSchema(limits: { maxFramesLimit: number; defaultFps: number; defaultMaxFrames: number }) {
  return {
    tags: ['pose'],
    summary: 'Pose a video and wait for the result',
    description:
      'Uploads a video (multipart/form-data) and answers with one pose result per sampled frame when all are done. ' +
      'For long videos use POST /api/jobs.',
    consumes: ['multipart/form-data'],
    security: bearerOptional,
    body: videoFormSchema(limits),
    response: { 200: poseResponseSchema, ...errorResponses },
  };
}

export const healthRouteSchema = {
  tags: ['operations'],
  summary: 'Readiness probe: 200 once POSE_MIN_READY workers are ready, else 503 (same body)',
  response: { 200: healthSchema, 503: healthSchema },
};

export const liveRouteSchema = {
  tags: ['operations'],
  summary: 'Liveness probe: 200 while the event loop answers, whatever the workers do',
  response: {
    200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['live'] } } },
  },
};
