/**
 * What a replica does with the durable jobs it takes (the BullMQ processors of redis-queue.ts):
 *   segment  pose one segment's frames (the whole video, or one range of a fanned-out video),
 *            saving each batch as it returns, then the segment's frames; a segment resumed
 *            after a crash or a hand-back poses only the batches not saved
 *   merge    once every segment is posed (the job is their BullMQ parent): lay their frames end
 *            to end, smooth, and write the response body; or, if a segment failed, fail the job
 *            with that segment's error and stop its siblings
 */
import { type Job as BullJob, DelayedError, type Queue, UnrecoverableError, WaitingError } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { Admission } from '../admission.js';
import type { JobsConfig } from '../config.js';
import { ApiError, isApiError } from '../errors.js';
import type { VideoInfo } from '../media/probe.js';
import { measureFrames } from '../pipeline/coaching-angles.js';
import { tallyOf } from '../pipeline/final-frames.js';
import { buildPoseResponse } from '../pipeline/pose-response.js';
import { type PoseVideoTiming, smoothFrames } from '../pipeline/pose-video.js';
import { type PoseRequestDeps, poseVideoFrames } from '../pipeline/pose-video-request.js';
import { contextOf, inSpan } from '../spans.js';
import type { PoseRequestFields } from '../upload/fields.js';
import { withTempDir } from '../upload/temp-dir.js';
import type { JobError } from './job.js';
import type { JobStorage, SegmentOutcome } from './job-storage.js';
import { jobError, resultTooLarge } from './run-job.js';
import { mergeSegmentFrames, type SegmentPlan } from './segments.js';

/** A job's BullMQ data (the parent of its segments). */
export interface DurableJobData {
  /** The upload, in POSE_STORAGE_DIR. */
  file: string;
  fields: PoseRequestFields;
  video: VideoInfo;
  expected: number;
  /** Sampled frames of each segment, in order (one entry: not fanned out). */
  segments: number[];
  /** Frames per batch, the same in every segment (checkpoints are numbered by it). */
  batchSize: number;
  /** Where the job's webhook goes when it ends (checked at acceptance: server/jobs/webhook-target.ts). */
  callbackUrl?: string;
  /** Tracing: the POST's span, which the merge continues (W3C traceparent). */
  traceparent?: string;
}

/** What a job's merge returns (BullMQ keeps it as the job's return value). */
export interface MergeReturn {
  resultBytes: number;
  /** Frames in the result (a webhook's progress). */
  frames: number;
}

/** A segment's BullMQ data (a child of its job). */
export interface SegmentData {
  job: string;
  file: string;
  fields: PoseRequestFields;
  video: VideoInfo;
  plan: SegmentPlan;
  /** Segments in the job. */
  of: number;
  /** Fixed per job, so that a resumed run numbers its batches as the first did. */
  batchSize: number;
  /** Tracing: the POST's span, which each run of the segment continues, on whichever replica (W3C traceparent). */
  traceparent?: string;
}

/** A segment's progress (BullMQ's progress field). */
export interface SegmentProgress {
  done: number;
  expected: number;
}

/** A job's progress field: when its first segment started. */
export interface JobStart {
  startedAt: number;
}

/** What a posed segment returns to its parent (BullMQ keeps it in the parent's processed values). */
export interface SegmentReturn {
  frames: number;
}

export const segmentId = (job: string, k: number) => `${job}-s${k}`;
export const cancelKey = (id: string) => `posepool:cancelled:${id}`;
/** Messages on this channel: `cancel:<job>` (DELETE) or `stop:<job>` (a sibling segment failed the job). */
export const CONTROL_CHANNEL = 'posepool:control';
/** Tries of a run that ends for a passing reason (a worker outage, Redis away); a job's own failure is final. */
export const RUN_ATTEMPTS = 5;

/** Why a running segment stopped without an answer: handed to another replica at shutdown. */
export class HandedBack extends Error {}
/** DELETE reached the replica running the segment. */
class Cancelled extends Error {}
/** Another segment failed the job, or the job has gone: nothing more to do. */
class Stopped extends Error {}
/** This replica lost the segment's lock (another may run it now). */
export class LockLost extends Error {}
/** Not now, not here (no worker ready, every place taken): back in the queue for a second. */
class Later extends Error {}
/** A job that ends failed with this error (not an exception of the pipeline's). */
class JobFailure extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
  }
}
export const CANCELLED: JobError = { code: 'CANCELLED', message: 'the job was cancelled (DELETE /api/jobs/:id)' };
const STOPPED: JobError = { code: 'INTERNAL_ERROR', message: 'stopped: another segment of this job failed, or the job has gone' };

interface LocalRun {
  job: string;
  abort: AbortController;
  drain: AbortController;
}

export interface ReplicaRunsDeps {
  /** The pipeline's dependencies, less each run's own temporary directory. */
  pipeline: Omit<PoseRequestDeps, 'tempDir'>;
  /** This replica's videos in progress (shared with the synchronous route). */
  admission: Admission;
  tempDir: string;
  log: FastifyBaseLogger;
  storage: JobStorage;
  client: Redis;
  jobs: Queue<DurableJobData>;
  limits: JobsConfig;
}

export class ReplicaRuns {
  /** Segments running in this replica, by segment id: their cancel (abort) and hand-over (drain) switches. */
  private readonly local = new Map<string, LocalRun>();
  private closing = false;

  constructor(private readonly deps: ReplicaRunsDeps) {}

  /** A control message: stop this replica's segments of a job. */
  control(message: string): void {
    const [what, job] = [message.slice(0, message.indexOf(':')), message.slice(message.indexOf(':') + 1)];
    for (const run of this.local.values()) {
      if (run.job === job) run.abort.abort(what === 'cancel' ? new Cancelled(job) : new Stopped(job));
    }
  }

  lockLost(segmentIds: string[]): void {
    for (const id of segmentIds) this.local.get(id)?.abort.abort(new LockLost(id));
  }

  /** Shutdown: running segments send no further batch, and go back to the queue once those in flight are saved. */
  drain(): void {
    this.closing = true;
    for (const run of this.local.values()) run.drain.abort(new HandedBack('the server is shutting down'));
  }

  /** The shutdown grace ran out: batches still in flight are dropped (they resume from the last checkpoint elsewhere). */
  abandon(): void {
    for (const run of this.local.values()) run.abort.abort(new HandedBack('the shutdown grace ran out'));
  }

  /** Poses one segment in this replica, saving each batch, and keeps its frames in storage (a `segment` span in the POST's trace). */
  segment(bull: BullJob<SegmentData>, token?: string): Promise<SegmentReturn> {
    const { data } = bull;
    const attributes = {
      'posepool.job.id': data.job,
      'posepool.segment.index': data.plan.k,
      'posepool.segment.of': data.of,
      'posepool.run.attempt': bull.attemptsMade + 1,
    };
    return inSpan('segment', { attributes, parent: contextOf(data.traceparent), expected: requeued }, () => this.runSegment(bull, token));
  }

  private async runSegment(bull: BullJob<SegmentData>, token?: string): Promise<SegmentReturn> {
    const { data } = bull;
    const { storage, limits } = this.deps;
    const id = bull.id as string;
    const log = this.deps.log.child({ jobId: data.job, segment: data.plan.k });
    // Posed by a run that died before it was recorded: the frames are there.
    const done = await storage.readSegment(data.job, data.plan.k);
    if (done) return { frames: done.frames.length };
    const run: LocalRun = { job: data.job, abort: new AbortController(), drain: new AbortController() };
    this.local.set(id, run);
    const { signal } = run.abort;
    const timer = setTimeout(
      () => run.abort.abort(new ApiError('TIMEOUT', `the job took longer than ${limits.timeoutMs} ms (JOB_TIMEOUT_MS)`)),
      Math.max(1, bull.timestamp + limits.timeoutMs - Date.now()),
    );
    timer.unref();
    let release: (() => void) | undefined;
    try {
      const [cancelled, parent] = await Promise.all([this.deps.client.exists(cancelKey(data.job)), this.deps.jobs.getJob(data.job)]);
      if (cancelled) run.abort.abort(new Cancelled(data.job));
      else if (!parent || parent.finishedOn) run.abort.abort(new Stopped(data.job));
      if (signal.aborted) throw signal.reason;
      if (this.closing) throw new HandedBack('the server is shutting down');
      if (!this.deps.pipeline.pool.isAvailable()) throw new Later('no pose worker is ready in this replica');
      let slot: Promise<() => void>;
      try {
        slot = this.deps.admission.tryEnter(signal).slot;
      } catch (err) {
        // This replica's videos are all taken (synchronous uploads): let another replica, or a later turn, take it.
        if (isApiError(err) && err.code === 'BUSY') throw new Later('this replica is busy');
        throw err;
      }
      release = await slot;
      if (signal.aborted) throw signal.reason;
      if (parent && !(parent.progress as Partial<JobStart>)?.startedAt) {
        await parent.updateProgress({ startedAt: Date.now() } satisfies JobStart).catch(() => {});
      }
      log.info({ frames: data.plan.count, progress: bull.progress }, 'segment running');
      const checkpoints = await storage.checkpoints(data.job, data.plan.k);
      const { result, model } = await withTempDir(
        (dir) =>
          poseVideoFrames(
            {
              id: data.job,
              file: data.file,
              // Smoothing runs over the merged frames; a segment stops after its own.
              // Smoothing and coaching angles run over the merged frames.
              fields: { ...data.fields, maxFrames: data.plan.count, smoothing: false, metrics: false },
              video: data.video,
              signal,
              log,
              started: performance.now(),
              onProgress: (n, expected) => void bull.updateProgress({ done: n, expected } satisfies SegmentProgress).catch(() => {}),
              checkpoints,
              drain: run.drain.signal,
              range: data.plan.range ?? undefined,
            },
            { ...this.deps.pipeline, config: { ...this.deps.pipeline.config, batchSize: data.batchSize }, tempDir: dir },
          ),
        this.deps.tempDir,
      );
      const outcome: SegmentOutcome = { frames: result.frames, model, sampleFps: result.sampleFps, timing: result.timing };
      if (result.decodeWarning) outcome.decodeWarning = result.decodeWarning;
      if (result.frames.length !== data.plan.count && data.of > 1) {
        log.warn({ planned: data.plan.count, decoded: result.frames.length }, 'segment decoded another number of frames than planned');
      }
      await storage.writeSegment(data.job, data.plan.k, outcome);
      log.info({ frames: result.frames.length }, 'segment posed');
      return { frames: result.frames.length };
    } catch (err) {
      const reason = signal.aborted ? signal.reason : err;
      if (reason instanceof LockLost) {
        // Another replica owns the segment now; its files are its.
        log.warn('segment lock lost (Redis away longer than JOBS_LOCK_MS?): this replica stops running it');
        throw reason;
      }
      if (reason instanceof Later) {
        await bull.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
      // SHUTTING_DOWN comes from this replica's admission closing (SIGTERM): the segment goes on elsewhere.
      if (reason instanceof HandedBack || (isApiError(reason) && reason.code === 'SHUTTING_DOWN')) {
        log.info({ progress: bull.progress }, 'segment handed back to the queue (shutdown): another replica continues it');
        await bull.moveToWait(token);
        throw new WaitingError();
      }
      throw this.failure(reason, bull.attemptsMade, log, data.job);
    } finally {
      clearTimeout(timer);
      release?.();
      if (this.local.get(id) === run) this.local.delete(id);
    }
  }

  /** The job, once its segments are done: their frames merged into the response body (or a segment's failure, as the job's). */
  merge(bull: BullJob<DurableJobData>): Promise<MergeReturn> {
    const attributes = { 'posepool.job.id': String(bull.id), 'posepool.segments': bull.data.segments.length };
    return inSpan('merge', { attributes, parent: contextOf(bull.data.traceparent) }, () => this.runMerge(bull));
  }

  private async runMerge(bull: BullJob<DurableJobData>): Promise<MergeReturn> {
    const id = bull.id as string;
    const { storage, client, limits } = this.deps;
    const log = this.deps.log.child({ jobId: id });
    try {
      if (await client.exists(cancelKey(id))) throw new Cancelled(id);
      // A segment failed for good (BullMQ woke the job early: continueParentOnFailure): the job fails with its error.
      const failed = Object.values(await bull.getFailedChildrenValues()).map(parseError);
      if (failed.length > 0) {
        await client.publish(CONTROL_CHANNEL, `stop:${id}`);
        throw new JobFailure(failed.find((e) => e.message !== STOPPED.message) ?? failed[0]);
      }
      const done = await storage.readResult(id);
      if (done !== undefined)
        return { resultBytes: Buffer.byteLength(done), frames: (JSON.parse(done) as { frames: unknown[] }).frames.length };
      const outcomes: SegmentOutcome[] = [];
      for (let k = 0; k < bull.data.segments.length; k++) {
        const outcome = await storage.readSegment(id, k);
        if (!outcome) throw new Error(`segment ${k}'s frames are missing from POSE_STORAGE_DIR`);
        outcomes.push(outcome);
      }
      const frames = mergeSegmentFrames(outcomes.map((o) => o.frames));
      if (bull.data.fields.smoothing) smoothFrames(frames, bull.data.video);
      const angles = bull.data.fields.metrics ? measureFrames(frames) : undefined;
      const warning = outcomes.find((o) => o.decodeWarning)?.decodeWarning;
      const response = buildPoseResponse({
        id,
        role: bull.data.fields.role,
        video: bull.data.video,
        model: outcomes[0].model,
        result: {
          frames,
          tally: tallyOf(frames),
          ...(angles ? { angles } : {}),
          sampleFps: outcomes[0].sampleFps,
          timing: sumTimings(outcomes.map((o) => o.timing)),
          decodeWarning: warning,
        },
        elapsedMs: Date.now() - bull.timestamp,
      });
      this.deps.pipeline.observer?.observeFrames(response.frames);
      const json = JSON.stringify(response);
      const bytes = Buffer.byteLength(json);
      if (bytes > limits.resultMaxBytes) throw new JobFailure(resultTooLarge(bytes, limits.resultMaxBytes));
      await storage.writeResult(id, json);
      log.info({ resultBytes: bytes, segments: outcomes.length }, 'job succeeded');
      return { resultBytes: bytes, frames: response.frames.length };
    } catch (err) {
      throw this.failure(err, bull.attemptsMade, log, id);
    }
  }

  /** A run's end with an error: passing ones are tried again (here or elsewhere, from the checkpoints); the last try's is final. */
  private failure(reason: unknown, attemptsMade: number, log: FastifyBaseLogger, job: string): Error {
    const ours = reason instanceof Cancelled || reason instanceof Stopped || reason instanceof JobFailure;
    const unexpected = !isApiError(reason) && !ours;
    const passing = unexpected || (isApiError(reason) && reason.code === 'POSE_SERVICE_UNAVAILABLE');
    if (passing && attemptsMade + 1 < RUN_ATTEMPTS) {
      log.warn({ err: reason, attempt: attemptsMade + 1 }, 'run stopped for a passing reason; it will be tried again');
      return new Error(`the run stopped: ${(reason as Error)?.message ?? String(reason)}`);
    }
    const error =
      reason instanceof Cancelled
        ? CANCELLED
        : reason instanceof Stopped
          ? STOPPED
          : reason instanceof JobFailure
            ? reason.error
            : jobError(reason, log, job);
    if (!(reason instanceof Stopped)) log.info({ code: error.code }, reason instanceof Cancelled ? 'job cancelled' : 'job failed');
    // Final: BullMQ records it; the queue's 'failed' handlers remove the files.
    return new UnrecoverableError(JSON.stringify(error));
  }
}

/** A run put back in the queue (for later, or for another replica): not a failure of the segment. */
function requeued(err: unknown): boolean {
  return err instanceof DelayedError || err instanceof WaitingError;
}

/** A failure this code recorded (a job's own final error), not a passing one BullMQ retries. */
export function isOurs(failedReason: string | undefined): boolean {
  try {
    return typeof (JSON.parse(failedReason ?? '') as JobError)?.code === 'string';
  } catch {
    return false;
  }
}

export function parseError(failedReason: string | undefined): JobError {
  try {
    const parsed = JSON.parse(failedReason ?? '') as JobError;
    if (typeof parsed?.code === 'string') return parsed;
  } catch {
    // not ours (a stall limit, a lost lock): shown as it is
  }
  return { code: 'INTERNAL_ERROR', message: failedReason || 'the job failed' };
}

function sumTimings(timings: PoseVideoTiming[]): PoseVideoTiming {
  const sum: PoseVideoTiming = { totalMs: 0, decodeWaitMs: 0, inferenceMs: 0, workerDecodeMs: 0, transportMs: 0, batches: 0 };
  for (const t of timings) for (const key of Object.keys(sum) as (keyof PoseVideoTiming)[]) sum[key] += t[key];
  return sum;
}
