/**
 * The API's JSON bodies as the end-to-end tests read them, built from the contract's own types.
 * A test asserts the status first and then reads the body that status means, so a helper's body is
 * typed as the route's answers at once: the fields of the answer the server did not give are absent
 * at run time, and the assertion that reads one fails.
 */
import type { ApiErrorBody } from '../../errors.js';
import type { JobView } from '../../jobs/job.js';
import type { PoseResponse } from '../../pipeline/pose-response.js';

/** An error answer (server/errors.ts ApiErrorBody) with the details the tests read. */
export interface ErrorBody {
  error: ApiErrorBody['error'] & {
    /** BAD_FIELD: the field at fault. */
    field?: string;
    /** UPLOAD_TOO_LARGE: the limit, in bytes. */
    limitBytes?: number;
    /** POSE_SERVICE_UNAVAILABLE: the first worker's cause and fix (server/pipeline/pose-video-request.ts); null while they start. */
    lastError?: { type: string; message: string; hint: string } | null;
  };
}

/** POST /api/upload-video-with-pose: the pose result (200) or an error. */
export type UploadBody = PoseResponse & ErrorBody;

/** POST /api/jobs and GET /api/jobs/:id: the job (202, 200) or an error. */
export type JobBody = JobView & ErrorBody;
