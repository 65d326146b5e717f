/**
 * The durable engine (REDIS_URL): jobs are BullMQ jobs on Redis; their uploads, per-batch
 * checkpoints and results live in POSE_STORAGE_DIR (server/jobs/job-storage.ts). Every replica
 * runs a BullMQ worker, so any replica may run any job and answer for it:
 *   progress  job.updateProgress → QueueEvents on every replica → the events route
 *   cancel    a Redis key (seen by whoever picks the job up later) and a message on a channel
 *             (seen at once by the replica running it, which aborts the batches in flight)
 *   crash     the dead replica stops renewing the job's lock; another replica's stalled check puts
 *             the job back and it resumes after the last checkpointed batch
 *   shutdown  no further batch is sent, those in flight finish and are saved, and the job goes
 *             straight back to the queue (moveToWait) for another replica
 * Guarantee: a batch may be posed more than once (a crash between its answer and its checkpoint);
 * every sampled frame appears exactly once in the result.
 */
import { type Job as BullJob, DelayedError, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import type { Admission } from '../admission.js';
import type { JobsConfig } from '../config.js';
import { ApiError, isApiError } from '../errors.js';
import type { VideoInfo } from '../media/probe.js';
import { type PoseRequestDeps, poseVideoRequest } from '../pipeline/pose-video-request.js';
import type { PoseRequestFields } from '../upload/fields.js';
import { withTempDir } from '../upload/temp-dir.js';
import {
  FINISHED_STATES,
  type JobError,
  type JobState,
  type JobSummary,
  type JobView,
  jobProgress,
  publicVideo,
  summaryOf,
} from './job.js';
import type { JobListener, JobQueue, JobQueueHealth, JobSubmission, SubmittedJob } from './job-queue.js';
import { JobStorage } from './job-storage.js';
import { jobError, resultTooLarge } from './run-job.js';

const QUEUE_NAME = 'posepool-jobs';
const CANCEL_CHANNEL = 'posepool:cancel';
const cancelKey = (id: string) => `posepool:cancelled:${id}`;
/** A job folder without a queue entry is an orphan (a crash between the two) once it is this old. */
const ORPHAN_AFTER_MS = 5 * 60_000;
/** Tries of a run that ends for a passing reason (a worker outage, Redis away); a job's own failure is final. */
const RUN_ATTEMPTS = 5;
/** How often this replica re-reads the jobs its event streams follow. */
const WATCH_POLL_MS = 2000;
/** Queue events kept in Redis (BullMQ trims the stream to about this many). */
const EVENTS_MAX_LEN = 2000;
/** A route's Redis call that takes longer is answered QUEUE_UNAVAILABLE. */
const REDIS_CALL_TIMEOUT_MS = 5000;

interface DurableJobData {
  /** The upload, in POSE_STORAGE_DIR. */
  file: string;
  fields: PoseRequestFields;
  video: VideoInfo;
  expected: number;
  /** Fixed per job, so that a resumed run numbers its batches as the first did. */
  batchSize: number;
}

interface DurableProgress {
  done: number;
  expected: number;
}

/** Why a running job stopped without an answer: handed to another replica at shutdown. */
class HandedBack extends Error {}
/** DELETE reached the replica running the job. */
class Cancelled extends Error {}
/** This replica lost the job's lock (another may run it now). */
class LockLost extends Error {}
/** Not now, not here (no worker ready, every place taken): back in the queue for a second. */
class Later extends Error {}
/** A job that ends failed with this error (not an exception of the pipeline's). */
class JobFailure extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
  }
}
const CANCELLED: JobError = { code: 'CANCELLED', message: 'the job was cancelled (DELETE /api/jobs/:id)' };

export interface RedisJobQueueDeps {
  /** The pipeline's dependencies, less each run's own temporary directory. */
  pipeline: Omit<PoseRequestDeps, 'tempDir'>;
  /** This replica's videos in progress (shared with the synchronous route). */
  admission: Admission;
  tempDir: string;
  /** Jobs this replica runs at once (MAX_ACTIVE_VIDEOS). */
  concurrency: number;
  log: FastifyBaseLogger;
}

export class RedisJobQueue implements JobQueue {
  readonly engine = 'redis' as const;
  readonly admitsOnAcceptance = false;
  private readonly storage: JobStorage;
  /** Commands; fails fast while Redis is away (a route answers 503 rather than hang). */
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly queue: Queue<DurableJobData>;
  private readonly events: QueueEvents;
  private readonly worker: Worker<DurableJobData>;
  /** Jobs running in this replica: their cancel (abort) and hand-over (drain) switches. */
  private readonly local = new Map<string, { abort: AbortController; drain: AbortController }>();
  private readonly watchers = new Map<string, Set<JobListener>>();
  private readonly where: string;
  private lastError: string | null = null;
  private closing = false;
  private readonly sweeper: NodeJS.Timeout;
  /** Follows watched jobs by polling too: an event missed (a reconnect, a trimmed stream) cannot leave a stream open. */
  private readonly poller: NodeJS.Timeout;
  /** Every Redis connection made here: BullMQ does not close connections it was given. */
  private readonly connections: Redis[] = [];
  private sweeping = false;

  constructor(
    private readonly limits: JobsConfig & { redisUrl: string; storageDir: string },
    private readonly deps: RedisJobQueueDeps,
  ) {
    this.storage = new JobStorage(limits.storageDir);
    this.where = redisAddress(limits.redisUrl);
    const connection = (opts: RedisOptions) => {
      const redis = new Redis(limits.redisUrl, { ...opts, lazyConnect: false });
      redis.on('error', (err: Error) => this.noteError(err));
      redis.on('ready', () => {
        if (redis === this.client) this.lastError = null;
      });
      this.connections.push(redis);
      return redis;
    };
    this.client = connection({ maxRetriesPerRequest: 1, enableOfflineQueue: false });
    this.subscriber = connection({ maxRetriesPerRequest: null });
    // BullMQ's own connections wait out an outage (its workers and event readers reconnect by themselves).
    this.queue = new Queue<DurableJobData>(QUEUE_NAME, {
      connection: connection({ maxRetriesPerRequest: 1, enableOfflineQueue: false }),
      // The events stream only feeds live event streams: bounded, so Redis stays flat however many jobs pass.
      streams: { events: { maxLen: EVENTS_MAX_LEN } },
    });
    this.events = new QueueEvents(QUEUE_NAME, { connection: connection({ maxRetriesPerRequest: null }) });
    this.worker = new Worker<DurableJobData>(QUEUE_NAME, (job, token) => this.run(job, token), {
      connection: connection({ maxRetriesPerRequest: null }),
      concurrency: Math.max(1, deps.concurrency),
      lockDuration: limits.lockMs,
      stalledInterval: limits.stalledIntervalMs,
      maxStalledCount: limits.maxStalls,
    });
    this.worker.on('lockRenewalFailed', (ids) => {
      // Another replica may take these jobs now: stop here without touching their files.
      for (const id of ids) this.local.get(id)?.abort.abort(new LockLost(id));
    });
    this.worker.on('completed', (job) => {
      // Pruned only once the job is recorded as completed: a crash before that finds the whole job.
      void this.storage.keepOnlyResult(job.id as string).catch((err: Error) => this.noteError(err));
    });
    this.queue.on('error', (err) => this.noteError(err));
    this.events.on('error', (err) => this.noteError(err));
    this.worker.on('error', (err) => this.noteError(err));
    this.worker.on('failed', (job) => {
      if (!job || (job.attemptsMade < (job.opts.attempts ?? 1) && !isOurs(job.failedReason))) return; // retried
      // Failed for good: cancelled and failed jobs leave no files; a cancelled job is forgotten (DELETE).
      void this.storage.remove(job.id as string).catch((err: Error) => this.noteError(err));
      if (parseError(job.failedReason)?.code === 'CANCELLED') void job.remove().catch(() => {});
    });
    this.listen();
    void this.subscriber.subscribe(CANCEL_CHANNEL).catch((err: Error) => this.noteError(err));
    this.subscriber.on('message', (_channel: string, id: string) => {
      this.local.get(id)?.abort.abort(new Cancelled(id));
    });
    this.sweeper = setInterval(() => void this.sweep(), Math.min(limits.ttlMs, 60_000));
    this.sweeper.unref();
    this.poller = setInterval(() => {
      for (const id of this.watchers.keys()) void this.update(id);
    }, WATCH_POLL_MS);
    this.poller.unref();
  }

  health(): JobQueueHealth {
    if (this.client.status === 'ready') return { engine: 'redis', status: 'ready' };
    return {
      engine: 'redis',
      status: 'unavailable',
      lastError: {
        message: `Redis at ${this.where} cannot be reached (${this.lastError ?? this.client.status})`,
        hint: 'start Redis (redis-server) or correct REDIS_URL; jobs resume by themselves once it answers (no restart needed)',
      },
    };
  }

  async assertRoom(): Promise<void> {
    if (this.closing) throw new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: 5 });
    const counts = await this.redis(() => this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'));
    const unfinished = Object.values(counts).reduce((a, b) => a + b, 0);
    if (unfinished >= this.limits.maxJobs) {
      throw new ApiError('BUSY', `the queue holds ${unfinished} unfinished jobs (JOBS_MAX)`, { retryAfterS: 5 });
    }
  }

  async submit({ id, received, expected, log }: JobSubmission): Promise<SubmittedJob> {
    const file = await this.storage.keepUpload(id, received.file);
    const data: DurableJobData = {
      file,
      fields: received.fields,
      video: received.video,
      expected,
      batchSize: this.deps.pipeline.config.batchSize,
    };
    try {
      const job = await this.redis(() =>
        this.queue.add('pose', data, {
          jobId: id,
          // Retries are for what may pass (no worker ready here, Redis away mid-run); a job's own failure is final.
          attempts: RUN_ATTEMPTS,
          backoff: { type: 'fixed', delay: 1000 },
          // A backstop: the sweep removes finished jobs after JOBS_TTL_S, and so does Redis if no replica sweeps.
          removeOnComplete: { age: Math.ceil(this.limits.ttlMs / 1000) + 60 },
          removeOnFail: { age: Math.ceil(this.limits.ttlMs / 1000) + 60 },
        }),
      );
      log.info({ expected }, 'job accepted (queued in Redis)');
      return { view: this.viewFrom(job, 'queued', null) };
    } catch (err) {
      // The upload goes unless the job may have been queued after all (the orphan sweep has it then).
      const queued = await this.queue.getJob(id).catch(() => 'unknown' as const);
      if (!queued) await this.storage.remove(id);
      throw err;
    }
  }

  async get(id: string): Promise<JobView | undefined> {
    const job = await this.find(id);
    return job ? this.viewOf(job) : undefined;
  }

  async cancel(id: string): Promise<boolean> {
    const job = await this.find(id);
    if (!job) return false;
    await this.redis(async () => {
      await this.client.set(cancelKey(id), '1', 'PX', this.limits.ttlMs);
      await this.client.publish(CANCEL_CHANNEL, id);
    });
    // A job running somewhere is stopped by that replica, which then removes it and its files.
    if ((await this.redis(() => job.getState())) !== 'active') {
      await job.remove().catch(() => {});
      await this.storage.remove(id);
      this.finish(id, cancelledSummary(id, job.progress));
    }
    return true;
  }

  async watch(id: string, listener: JobListener): Promise<(() => void) | null> {
    // Listening before reading: an end that comes in between is not missed.
    let ended = false;
    const once: JobListener = (summary, finished) => {
      if (ended) return;
      if (finished) ended = true;
      listener(summary, finished);
    };
    const set = this.watchers.get(id) ?? new Set<JobListener>();
    this.watchers.set(id, set);
    set.add(once);
    const stop = () => {
      set.delete(once);
      if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
    };
    let view: JobView | undefined;
    try {
      view = await this.get(id);
    } catch (err) {
      stop();
      throw err;
    }
    if (!view) {
      stop();
      return null;
    }
    const finished = FINISHED_STATES.has(view.state);
    once(summaryOf(view), finished);
    if (finished) stop();
    return stop;
  }

  async countsByState(): Promise<Record<JobState, number>> {
    const c = await this.redis(() => this.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'));
    return { queued: c.waiting + c.delayed + c.prioritized, running: c.active, succeeded: c.completed, failed: c.failed, cancelled: 0 };
  }

  /** Shutdown: take no more jobs; running ones finish their batches in flight and go back to the queue. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    clearInterval(this.poller);
    for (const run of this.local.values()) run.drain.abort(new HandedBack('the server is shutting down'));
    const closed = this.worker.close();
    const graceOver = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
    if ((await Promise.race([closed.then(() => 'closed' as const), graceOver])) === 'late') {
      // Batches still in flight are dropped (they resume from the last checkpoint elsewhere), and the jobs handed back.
      for (const run of this.local.values()) run.abort.abort(new HandedBack('the shutdown grace ran out'));
      await closed;
    }
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    for (const redis of this.connections) redis.disconnect();
  }

  /** One job, in this replica: pose it, saving each batch, and keep the result in storage. */
  private async run(job: BullJob<DurableJobData>, token?: string): Promise<{ resultBytes: number }> {
    const id = job.id as string;
    const log = this.deps.log.child({ jobId: id });
    // Finished by a run that died before it was recorded: the result is there.
    const done = await this.storage.readResult(id);
    if (done !== undefined) return { resultBytes: Buffer.byteLength(done) };
    const abort = new AbortController();
    const drain = new AbortController();
    this.local.set(id, { abort, drain });
    const timeoutMs = Math.max(1, job.timestamp + this.limits.timeoutMs - Date.now());
    const timer = setTimeout(
      () => abort.abort(new ApiError('TIMEOUT', `the job took longer than ${this.limits.timeoutMs} ms (JOB_TIMEOUT_MS)`)),
      timeoutMs,
    );
    timer.unref();
    let release: (() => void) | undefined;
    try {
      if (await this.client.exists(cancelKey(id))) abort.abort(new Cancelled(id));
      if (abort.signal.aborted) throw abort.signal.reason;
      if (this.closing) throw new HandedBack('the server is shutting down');
      if (!this.deps.pipeline.pool.isAvailable()) throw new Later('no pose worker is ready in this replica');
      let slot: Promise<() => void>;
      try {
        slot = this.deps.admission.tryEnter(abort.signal).slot;
      } catch (err) {
        // This replica's videos are all taken (synchronous uploads): let another replica, or a later turn, take it.
        if (isApiError(err) && err.code === 'BUSY') throw new Later('this replica is busy');
        throw err;
      }
      release = await slot;
      if (abort.signal.aborted) throw abort.signal.reason;
      log.info({ expected: job.data.expected, progress: job.progress }, 'job running');
      const { data } = job;
      const response = await withTempDir(
        (dir) =>
          poseVideoRequest(
            {
              id,
              file: data.file,
              fields: data.fields,
              video: data.video,
              signal: abort.signal,
              log,
              started: performance.now() - (Date.now() - job.timestamp),
              onProgress: (done, expected) => void job.updateProgress({ done, expected } satisfies DurableProgress).catch(() => {}),
              checkpoints: this.storage.checkpoints(id),
              drain: drain.signal,
            },
            { ...this.deps.pipeline, config: { ...this.deps.pipeline.config, batchSize: data.batchSize }, tempDir: dir },
          ),
        this.deps.tempDir,
      );
      const json = JSON.stringify(response);
      const bytes = Buffer.byteLength(json);
      if (bytes > this.limits.resultMaxBytes) throw new JobFailure(resultTooLarge(bytes, this.limits.resultMaxBytes));
      await this.storage.writeResult(id, json);
      log.info({ resultBytes: bytes }, 'job succeeded');
      return { resultBytes: bytes };
    } catch (err) {
      const reason = abort.signal.aborted ? abort.signal.reason : err;
      if (reason instanceof LockLost) {
        // Another replica owns the job now; its files are its.
        log.warn('job lock lost (Redis away longer than JOBS_LOCK_MS?): this replica stops running it');
        throw reason;
      }
      if (reason instanceof Later) {
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
      // SHUTTING_DOWN comes from this replica's admission closing (SIGTERM): the job goes on elsewhere.
      if (reason instanceof HandedBack || (isApiError(reason) && reason.code === 'SHUTTING_DOWN')) {
        log.info({ progress: job.progress }, 'job handed back to the queue (shutdown): another replica continues it');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      // Passing: the workers died under it, or something unexpected (Redis dropped mid-call). A retry, here or
      // elsewhere, continues from the checkpoints; the last try's error is final.
      const unexpected = !isApiError(reason) && !(reason instanceof Cancelled) && !(reason instanceof JobFailure);
      const passing = unexpected || (isApiError(reason) && reason.code === 'POSE_SERVICE_UNAVAILABLE');
      if (passing && job.attemptsMade + 1 < RUN_ATTEMPTS) {
        log.warn({ err: reason, attempt: job.attemptsMade + 1 }, 'job run stopped for a passing reason; it will be tried again');
        throw new Error(`the run stopped: ${(reason as Error)?.message ?? String(reason)}`);
      }
      const error = reason instanceof Cancelled ? CANCELLED : reason instanceof JobFailure ? reason.error : jobError(reason, log, id);
      log.info({ code: error.code }, reason instanceof Cancelled ? 'job cancelled' : 'job failed');
      // Final: its files go once BullMQ has recorded it (the 'failed' handler).
      throw new UnrecoverableError(JSON.stringify(error));
    } finally {
      clearTimeout(timer);
      release?.();
      if (this.local.get(id)?.abort === abort) this.local.delete(id);
    }
  }

  /** QueueEvents → this replica's event streams. */
  private listen(): void {
    this.events.on('active', ({ jobId }) => void this.update(jobId));
    this.events.on('waiting', ({ jobId }) => void this.update(jobId));
    this.events.on('progress', ({ jobId }) => void this.update(jobId));
    this.events.on('completed', ({ jobId }) => void this.update(jobId));
    this.events.on('failed', ({ jobId, failedReason }) => {
      const error = parseError(failedReason);
      if (error?.code === 'CANCELLED') this.finish(jobId, cancelledSummary(jobId, undefined));
      else void this.update(jobId);
    });
    this.events.on('removed', ({ jobId }) => this.finish(jobId, cancelledSummary(jobId, undefined)));
  }

  /** Tells the job's watchers in this replica where it stands (gone: it was cancelled, or expired). */
  private async update(id: string): Promise<void> {
    if (!this.watchers.has(id)) return;
    let view: JobView | undefined;
    try {
      view = await this.get(id);
    } catch {
      return; // Redis away: the next event or poll tells
    }
    if (!view) this.finish(id, cancelledSummary(id, undefined));
    else if (FINISHED_STATES.has(view.state)) this.finish(id, summaryOf(view));
    else for (const l of this.watchers.get(id) ?? []) l(summaryOf(view), false);
  }

  private finish(id: string, summary: JobSummary): void {
    const set = this.watchers.get(id);
    if (!set) return;
    this.watchers.delete(id);
    for (const l of set) l(summary, true);
  }

  /** The job, unless it was cancelled (DELETE forgets it) or has expired. */
  private async find(id: string): Promise<BullJob<DurableJobData> | undefined> {
    const [job, cancelled] = await this.redis(() => Promise.all([this.queue.getJob(id), this.client.exists(cancelKey(id))]));
    if (!job || cancelled) return undefined;
    if (job.finishedOn && job.finishedOn + this.limits.ttlMs < Date.now()) return undefined;
    return job;
  }

  private async viewOf(job: BullJob<DurableJobData>): Promise<JobView> {
    const error = parseError(job.failedReason);
    const state = stateOf(await this.redis(() => job.getState()), job, error);
    let result: JobView['result'];
    if (state === 'succeeded') {
      const json = await this.storage.readResult(job.id as string);
      if (json) result = JSON.parse(json);
    }
    return this.viewFrom(job, state, error, result);
  }

  private viewFrom(job: BullJob<DurableJobData>, state: JobState, error: JobError | null, result?: JobView['result']): JobView {
    const id = job.id as string;
    const progress = job.progress as Partial<DurableProgress> | number;
    const expected = typeof progress === 'object' && progress.expected ? progress.expected : job.data.expected;
    let done = typeof progress === 'object' && progress.done ? progress.done : 0;
    if (state === 'succeeded') done = result?.frames.length ?? expected;
    const total = state === 'succeeded' ? done : Math.max(expected, done);
    return {
      id,
      state,
      progress: jobProgress(done, total, state === 'succeeded'),
      ...(error && state !== 'succeeded' ? { error } : {}),
      links: { self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` },
      createdAt: new Date(job.timestamp).toISOString(),
      ...(job.processedOn ? { startedAt: new Date(job.processedOn).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
      ...(job.finishedOn ? { expiresAt: new Date(job.finishedOn + this.limits.ttlMs).toISOString() } : {}),
      video: publicVideo(job.data.video),
      ...(result ? { result } : {}),
    };
  }

  /** Finished jobs past JOBS_TTL_S, their keys and files, and orphan folders go (any replica may do it). */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const expired = [
        ...(await this.queue.clean(this.limits.ttlMs, 1000, 'completed')),
        ...(await this.queue.clean(this.limits.ttlMs, 1000, 'failed')),
      ];
      await Promise.all(expired.map((id) => this.storage.remove(id)));
      for (const { id, mtimeMs } of await this.storage.list()) {
        if (Date.now() - mtimeMs < ORPHAN_AFTER_MS) continue;
        if (!(await this.find(id))) await this.storage.remove(id);
      }
    } catch (err) {
      this.noteError(err as Error);
    } finally {
      this.sweeping = false;
    }
  }

  /** A Redis call from a route: QUEUE_UNAVAILABLE (503, Retry-After) when Redis does not answer. */
  private async redis<T>(fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // BullMQ's calls wait for a connection: while Redis is away, answer at once instead.
      if (this.client.status !== 'ready') throw new Error(this.lastError ?? `connection ${this.client.status}`);
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_CALL_TIMEOUT_MS} ms`)), REDIS_CALL_TIMEOUT_MS);
      });
      return await Promise.race([fn(), late]);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      this.noteError(err as Error);
      throw new ApiError('QUEUE_UNAVAILABLE', `the job queue (Redis at ${this.where}) cannot be reached: ${(err as Error).message}`, {
        retryAfterS: 5,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private noteError(err: Error): void {
    const message = err.message || String(err);
    if (message !== this.lastError) this.deps.log.warn({ err: message, redis: this.where }, 'job queue: Redis error');
    this.lastError = message;
  }
}

function stateOf(bullState: string, job: BullJob<DurableJobData>, error: JobError | null): JobState {
  switch (bullState) {
    case 'completed':
      return 'succeeded';
    case 'failed':
      return error?.code === 'CANCELLED' ? 'cancelled' : 'failed';
    case 'active':
      return 'running';
    default:
      // Waiting again after it started (handed back, or its replica died): it is mid-run, between replicas.
      return job.processedOn ? 'running' : 'queued';
  }
}

/** A failure this code recorded (a job's own final error), not a passing one BullMQ retries. */
function isOurs(failedReason: string | undefined): boolean {
  try {
    return typeof (JSON.parse(failedReason ?? '') as JobError)?.code === 'string';
  } catch {
    return false;
  }
}

function parseError(failedReason: string | undefined): JobError | null {
  if (!failedReason) return null;
  try {
    const parsed = JSON.parse(failedReason) as JobError;
    if (typeof parsed?.code === 'string') return parsed;
  } catch {
    // not ours (a stall limit, a lost lock): shown as it is
  }
  return { code: 'INTERNAL_ERROR', message: failedReason };
}

function cancelledSummary(id: string, progress: unknown): JobSummary {
  const p = (typeof progress === 'object' && progress ? progress : {}) as Partial<DurableProgress>;
  const done = p.done ?? 0;
  const expected = Math.max(p.expected ?? 0, done);
  return {
    id,
    state: 'cancelled',
    progress: jobProgress(done, expected, false),
    error: CANCELLED,
    links: { self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` },
  };
}

/** host:port of a Redis URL, without credentials (for messages). */
function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'REDIS_URL';
  }
}
