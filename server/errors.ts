/**
 * The HTTP API's error catalogue: every non-2xx answer carries one of these codes.
 * One place for code → HTTP status → default message; the error handler in app.ts maps them,
 * server/test/errors.test.ts checks that each is documented in the README.
 */
import { publicValue, withoutPaths } from './public-text.js';

export const API_ERRORS = {
  MISSING_VIDEO: { status: 400, message: 'the multipart field "video" (a file) is required' },
  BAD_FIELD: { status: 400, message: 'a form field is invalid' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  CALLBACK_NOT_ALLOWED: { status: 400, message: "the job's callbackUrl is not allowed (WEBHOOK_ALLOWED_HOSTS, WEBHOOK_SECRET)" },
  UNAUTHORIZED: { status: 401, message: 'a valid bearer token is required' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  UPLOAD_NOT_FOUND: { status: 404, message: 'no finished upload with this id (unknown, expired after UPLOAD_EXPIRY_S, or already used)' },
  UPLOAD_TIMEOUT: { status: 408, message: 'the request arrived too slowly (UPLOAD_MIN_BYTES_PER_S, UPLOAD_TIMEOUT_MS)' },
  UPLOAD_INCOMPLETE: { status: 409, message: 'the upload has not received all its bytes yet' },
  UPLOAD_TOO_LARGE: { status: 413, message: 'the upload exceeds MAX_UPLOAD_MB' },
  FRAME_TOO_LARGE: { status: 413, message: "the video's frames exceed MAX_PIXELS" },
  NOT_A_VIDEO: { status: 415, message: 'the file is not a video' },
  HEADERS_TOO_LARGE: { status: 431, message: "the request's headers are too large" },
  UNDECODABLE_VIDEO: { status: 422, message: 'the video could not be decoded' },
  INTERNAL_ERROR: { status: 500, message: 'internal error' },
  POSE_SERVICE_UNAVAILABLE: { status: 503, message: 'no pose worker is ready' },
  BUSY: { status: 503, message: 'the server is busy: too many videos in progress' },
  SHUTTING_DOWN: { status: 503, message: 'the server is shutting down' },
  QUEUE_UNAVAILABLE: { status: 503, message: 'the job queue (Redis, REDIS_URL) cannot be reached' },
  TIMEOUT: { status: 504, message: 'the video took too long to process' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** The JSON body of every error answer: the code, the message, the request id, and the error's details. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string; requestId: string; [detail: string]: unknown };
}

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  /** Extra fields for the JSON body (e.g. lastErrors, field). Never stack traces or paths. */
  readonly details: Record<string, unknown>;
  /** Seconds, sent as Retry-After. */
  readonly retryAfterS?: number;

  constructor(
    code: ApiErrorCode,
    message?: string,
    opts: { details?: Record<string, unknown>; retryAfterS?: number; cause?: unknown } = {},
  ) {
    super(message ?? API_ERRORS[code].message, { cause: opts.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = API_ERRORS[code].status;
    this.details = opts.details ?? {};
    this.retryAfterS = opts.retryAfterS;
  }

  /** The JSON body: message and details without absolute paths (the log keeps them). */
  body(requestId: string): ApiErrorBody {
    return { error: { code: this.code, message: withoutPaths(this.message), requestId, ...publicValue(this.details) } };
  }
}

export const isApiError = (err: unknown): err is ApiError => err instanceof ApiError;

/**
 * The same body as a whole HTTP response, for the errors Node answers on the socket before any
 * request exists (a header block over the limit, a malformed request line).
 */
export function rawErrorResponse(err: ApiError, requestId: string): string {
  const body = JSON.stringify(err.body(requestId));
  return (
    `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`
  );
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };
