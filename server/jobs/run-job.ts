/**
 * A job's life after 202: wait for its admission slot, pose the video through the same steps as
 * the synchronous route (progress from poseVideo's onProgress), keep the result if it fits, and
 * release the slot on every path. The caller removes the job's temporary directory afterwards.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import type { FastifyBaseLogger } from 'fastify';
import type { JobsConfig } from '../config.js';
import { ApiError, isApiError } from '../errors.js';
import { type PoseRequestDeps, poseVideoRequest } from '../pipeline/pose-video-request.js';
import { inSpan } from '../spans.js';
import type { ReceivedVideo } from '../upload/receive-video.js';
import { type Job, type JobError, RESULT_TOO_LARGE } from './job.js';

export interface RunJobContext {
  /** The admission slot taken at acceptance: resolves with its release when the video may run. */
  slot: Promise<() => void>;
  received: ReceivedVideo;
  deps: PoseRequestDeps;
  limits: Pick<JobsConfig, 'resultMaxBytes' | 'timeoutMs'>;
  log: FastifyBaseLogger;
}

/** Runs in the context it was called in: the POST's, so the job's `job` span continues that request's trace. */
export function runJob(job: Job, ctx: RunJobContext): Promise<void> {
  return inSpan('job', { attributes: { 'posepool.job.id': job.id } }, async (span) => {
    await runJobInSpan(job, ctx);
    span.setAttribute('posepool.job.state', job.state);
    if (job.error) span.setAttribute('posepool.job.error', job.error.code);
    if (job.state === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: job.error?.message });
  });
}

async function runJobInSpan(job: Job, ctx: RunJobContext): Promise<void> {
  const { signal } = job.abort;
  const timer = setTimeout(
    () => job.abort.abort(new ApiError('TIMEOUT', `the job took longer than ${ctx.limits.timeoutMs} ms (JOB_TIMEOUT_MS)`)),
    ctx.limits.timeoutMs,
  );
  timer.unref();
  let release: (() => void) | undefined;
  try {
    release = await ctx.slot;
    if (signal.aborted) throw signal.reason;
    job.start();
    ctx.log.info({ jobId: job.id, expected: job.expected }, 'job started');
    const response = await poseVideoRequest(
      {
        id: job.id,
        file: ctx.received.file,
        fields: ctx.received.fields,
        video: ctx.received.video,
        signal,
        log: ctx.log,
        started: job.acceptedAt,
        onProgress: (done, expected) => job.progress(done, expected),
        onFrames: (frames) => job.addFrames(frames),
      },
      ctx.deps,
    );
    const bytes = Buffer.byteLength(JSON.stringify(response));
    if (bytes > ctx.limits.resultMaxBytes) {
      job.fail(resultTooLarge(bytes, ctx.limits.resultMaxBytes));
    } else {
      job.succeed(response, bytes);
    }
  } catch (err) {
    if (!job.finished) job.fail(jobError(err, ctx.log, job.id));
  } finally {
    clearTimeout(timer);
    release?.();
  }
  ctx.log.info({ jobId: job.id, state: job.state, code: job.error?.code, resultBytes: job.resultBytes }, `job ${job.state}`);
}

/** RESULT_TOO_LARGE: the result's JSON is over JOB_RESULT_MAX_MB. */
export function resultTooLarge(bytes: number, maxBytes: number): JobError {
  return {
    code: RESULT_TOO_LARGE,
    message: `the result is ${mb(bytes)} MB, above JOB_RESULT_MAX_MB (${mb(maxBytes)} MB); ask for fewer frames (fps, maxFrames)`,
  };
}

/** A job's error from whatever stopped it: the catalogue's body for an ApiError, else INTERNAL_ERROR (logged). */
export function jobError(err: unknown, log: FastifyBaseLogger, jobId: string): JobError {
  if (isApiError(err)) {
    const body = err.body('').error as JobError;
    delete body.requestId;
    return body;
  }
  log.error({ jobId, err }, 'job failed unexpectedly');
  return { code: 'INTERNAL_ERROR', message: 'internal error (see the server log with this job id)' };
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
