/**
 * The durable engine (REDIS_URL): jobs are BullMQ jobs on Redis; their uploads, per-batch
 * checkpoints and results live in POSE_STORAGE_DIR (server/jobs/job-storage.ts). Each job is a
 * BullMQ flow: the job (queue posepool-jobs) is the parent of its segments (posepool-segments),
 * one for a short video, several for a long one (fan-out: segments.ts). Every replica runs a
 * worker for both queues (redis-runs.ts), so any replica may pose any segment and answer for any job:
 *   progress  segments' updateProgress → QueueEvents on every replica → the events route
 *   cancel    a Redis key (seen by whoever picks a segment up later) and a message on a channel
 *             (seen at once by the replicas running its segments, which abort their batches)
 *   crash     the dead replica stops renewing its segment's lock; another replica's stalled check
 *             puts the segment back and it resumes after its last checkpointed batch
 *   shutdown  no further batch is sent, those in flight finish and are saved, and the segment goes
 *             straight back to the queue (moveToWait) for another replica
 *   merge     once every segment is posed BullMQ runs the job itself: frames merged and smoothed
 *   webhook   a job's end (completed, failed: the queue's events, seen by every replica; a cancel: the
 *             DELETE) queues its event in posepool-webhooks under one id, so it is queued once
 *             whichever replicas see it; any replica's webhook worker sends it (webhook-redis.ts)
 * Guarantee: a segment (and a batch) may be posed more than once (a crash between its answer and its
 * checkpoint); every sampled frame appears exactly once in the result.
 */
import { type Job as BullJob, FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import type { Admission } from '../admission.js';
import type { JobsConfig } from '../config.js';
import { ApiError } from '../errors.js';
import { sampleRate, usesSeeking } from '../media/frame-source.js';
import { scanFrameTimes } from '../media/frame-times.js';
import { expectedFrames } from '../pipeline/pose-video.js';
import type { PoseRequestDeps } from '../pipeline/pose-video-request.js';
import { activeTraceparent } from '../spans.js';
import {
  FINISHED_STATES,
  type JobError,
  type JobFramesChunk,
  type JobState,
  type JobSummary,
  type JobView,
  jobProgress,
  publicVideo,
  summaryOf,
} from './job.js';
import type { JobListener, JobQueue, JobQueueHealth, JobSubmission, SubmittedJob } from './job-queue.js';
import { JobStorage } from './job-storage.js';
import {
  CANCELLED,
  CONTROL_CHANNEL,
  cancelKey,
  type DurableJobData,
  isOurs,
  type JobStart,
  type MergeReturn,
  parseError,
  ReplicaRuns,
  RUN_ATTEMPTS,
  type SegmentData,
  type SegmentProgress,
  type SegmentReturn,
  segmentId,
} from './redis-runs.js';
import { mayFanOut, planSegments, type SegmentPlan } from './segments.js';
import { storedFrames } from './stored-frames.js';
import { RedisWebhooks } from './webhook-redis.js';
import type { WebhookSender } from './webhooks.js';

const JOBS_QUEUE = 'posepool-jobs';
const SEGMENTS_QUEUE = 'posepool-segments';
/** A job folder without a queue entry is an orphan (a crash between the two) once it is this old. */
const ORPHAN_AFTER_MS = 5 * 60_000;
/** How often this replica re-reads the jobs its event streams follow. */
const WATCH_POLL_MS = 2000;
/** Queue events kept in Redis (BullMQ trims each queue's stream to about this many). */
const EVENTS_MAX_LEN = 2000;
/** A route's Redis call that takes longer is answered QUEUE_UNAVAILABLE. */
const REDIS_CALL_TIMEOUT_MS = 5000;
/** The job a segment id belongs to. */
const jobOfSegment = (id: string) => id.replace(/-s\d+$/, '');

export interface RedisJobQueueDeps {
  /** The pipeline's dependencies, less each run's own temporary directory. */
  pipeline: Omit<PoseRequestDeps, 'tempDir'>;
  /** ffprobe: a long video's frame times, for its fan-out plan. */
  ffprobe: string;
  /** This replica's videos in progress (shared with the synchronous route). */
  admission: Admission;
  tempDir: string;
  /** Segments this replica poses at once (MAX_ACTIVE_VIDEOS). */
  concurrency: number;
  log: FastifyBaseLogger;
  /** Attempts of finished jobs' webhooks (this replica's settings and metrics). */
  webhooks: WebhookSender;
}

export class RedisJobQueue implements JobQueue {
  readonly engine = 'redis' as const;
  readonly admitsOnAcceptance = false;
  private readonly storage: JobStorage;
  /** Commands; fails fast while Redis is away (a route answers 503 rather than hang). */
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly jobs: Queue<DurableJobData>;
  private readonly segments: Queue<SegmentData>;
  private readonly flows: FlowProducer;
  private readonly events: QueueEvents[];
  private readonly workers: Worker[];
  private readonly runs: ReplicaRuns;
  private readonly webhooks: RedisWebhooks;
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
    const failFast = { maxRetriesPerRequest: 1, enableOfflineQueue: false };
    // BullMQ's blocking connections (workers, event readers) wait out an outage and reconnect by themselves.
    const patient = { maxRetriesPerRequest: null };
    this.client = connection(failFast);
    this.subscriber = connection(patient);
    const shared = connection(failFast);
    // The events streams only feed live event streams: bounded, so Redis stays flat however many jobs pass.
    const streams = { events: { maxLen: EVENTS_MAX_LEN } };
    this.jobs = new Queue<DurableJobData>(JOBS_QUEUE, { connection: shared, streams });
    this.segments = new Queue<SegmentData>(SEGMENTS_QUEUE, { connection: shared, streams });
    this.flows = new FlowProducer({ connection: shared });
    this.runs = new ReplicaRuns({
      pipeline: deps.pipeline,
      admission: deps.admission,
      tempDir: deps.tempDir,
      log: deps.log,
      storage: this.storage,
      client: this.client,
      jobs: this.jobs,
      limits,
    });
    const locks = { lockDuration: limits.lockMs, stalledInterval: limits.stalledIntervalMs, maxStalledCount: limits.maxStalls };
    const concurrency = Math.max(1, deps.concurrency);
    const segmentWorker = new Worker<SegmentData, SegmentReturn>(SEGMENTS_QUEUE, (job, token) => this.runs.segment(job, token), {
      connection: connection(patient),
      concurrency,
      ...locks,
    });
    const jobWorker = new Worker<DurableJobData>(JOBS_QUEUE, (job) => this.runs.merge(job), {
      connection: connection(patient),
      concurrency,
      ...locks,
    });
    this.workers = [segmentWorker, jobWorker];
    this.webhooks = new RedisWebhooks({
      sender: deps.webhooks,
      connection: shared,
      // A replica that cannot sign sends nothing: it leaves the events to the replicas that can.
      workerConnection: deps.webhooks.config.secret ? connection(patient) : null,
      keepS: Math.ceil(limits.ttlMs / 1000) + 60,
      onError: (err) => this.noteError(err),
    });
    this.events = [
      new QueueEvents(JOBS_QUEUE, { connection: connection(patient) }),
      new QueueEvents(SEGMENTS_QUEUE, { connection: connection(patient) }),
    ];
    // Another replica may take these segments now: stop here without touching their files.
    segmentWorker.on('lockRenewalFailed', (ids) => this.runs.lockLost(ids));
    segmentWorker.on('completed', (job) => {
      void this.storage.dropCheckpoints(job.data.job, job.data.plan.k).catch((err: Error) => this.noteError(err));
    });
    segmentWorker.on('failed', (job) => {
      // A cancelled segment's end may be the last thing holding its job: the job and its files go.
      if (job && isFinal(job) && parseError(job.failedReason).code === 'CANCELLED') void this.forget(job.data.job);
    });
    jobWorker.on('completed', (job) => {
      // Pruned only once the job is recorded as completed: a crash before that finds the whole job.
      void this.storage.keepOnlyResult(job.id as string).catch((err: Error) => this.noteError(err));
    });
    jobWorker.on('failed', (job) => {
      if (!job || !isFinal(job)) return; // retried
      // Failed for good: cancelled and failed jobs leave no files; a cancelled job is forgotten (DELETE).
      if (parseError(job.failedReason).code === 'CANCELLED') void this.forget(job.id as string);
      else void this.storage.remove(job.id as string).catch((err: Error) => this.noteError(err));
    });
    const noteError = (err: Error) => this.noteError(err);
    this.jobs.on('error', noteError);
    this.segments.on('error', noteError);
    this.flows.on('error', noteError);
    for (const events of this.events) events.on('error', noteError);
    for (const worker of this.workers) worker.on('error', noteError);
    this.listen();
    void this.subscriber.subscribe(CONTROL_CHANNEL).catch((err: Error) => this.noteError(err));
    this.subscriber.on('message', (_channel: string, message: string) => this.runs.control(message));
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
    const counts = await this.redis(() => this.jobs.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children'));
    const unfinished = Object.values(counts).reduce((a, b) => a + b, 0);
    if (unfinished >= this.limits.maxJobs) {
      throw new ApiError('BUSY', `the queue holds ${unfinished} unfinished jobs (JOBS_MAX)`, { retryAfterS: 5 });
    }
  }

  async submit({ id, received, expected, log }: JobSubmission): Promise<SubmittedJob> {
    const file = await this.storage.keepUpload(id, received.file);
    try {
      const plans = await this.plan(file, received.fields, received.video);
      const { fields, video } = received;
      // Tracing: the segments and the merge, on whichever replica, continue the POST's trace.
      const traceparent = activeTraceparent();
      const data: DurableJobData = {
        file,
        fields,
        video,
        expected: plans.length > 1 ? plans.reduce((n, p) => n + p.count, 0) : expected,
        segments: plans.map((p) => p.count),
        batchSize: this.deps.pipeline.config.batchSize,
        ...(received.callbackUrl ? { callbackUrl: received.callbackUrl } : {}),
        ...(traceparent ? { traceparent } : {}),
      };
      // Retries are for what may pass (no worker ready here, Redis away mid-run); a job's own failure is final.
      const retries = { attempts: RUN_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 } };
      // A backstop: the sweep removes finished jobs after JOBS_TTL_S, and so does Redis if no replica sweeps.
      const keep = { age: Math.ceil(this.limits.ttlMs / 1000) + 60 };
      const flow = await this.redis(() =>
        this.flows.add({
          name: 'job',
          queueName: JOBS_QUEUE,
          data,
          opts: { jobId: id, ...retries, removeOnComplete: keep, removeOnFail: keep },
          children: plans.map((plan) => ({
            name: 'segment',
            queueName: SEGMENTS_QUEUE,
            data: {
              job: id,
              file,
              fields,
              video,
              plan,
              of: plans.length,
              batchSize: data.batchSize,
              ...(traceparent ? { traceparent } : {}),
            } satisfies SegmentData,
            // A segment that fails for good wakes the job at once (it fails with the segment's error); a posed one
            // leaves only its frame count, in the job.
            opts: { jobId: segmentId(id, plan.k), ...retries, continueParentOnFailure: true, removeOnComplete: true, removeOnFail: keep },
          })),
        }),
      );
      log.info({ expected: data.expected, segments: plans.length }, 'job accepted (queued in Redis)');
      return { view: this.viewFrom(flow.job as BullJob<DurableJobData>, 'queued', null, 0) };
    } catch (err) {
      // The upload goes unless the job may have been queued after all (the orphan sweep has it then).
      const queued = await this.jobs.getJob(id).catch(() => 'unknown' as const);
      if (!queued) await this.storage.remove(id);
      throw err;
    }
  }

  /** A video's segments: one, unless it samples more frames than a segment holds (then its frame times decide them). */
  private async plan(file: string, fields: DurableJobData['fields'], video: DurableJobData['video']): Promise<SegmentPlan[]> {
    const fps = sampleRate(fields.fps, video);
    const { batchSize, maxDecodedFrames } = this.deps.pipeline.config;
    const o = { fps, maxFrames: fields.maxFrames, segmentFrames: this.limits.segmentFrames, batchSize };
    // Sparse sampling seeks frame by frame already; a video of unknown length is posed in one pass.
    const onePass =
      video.durationMs <= 0 ||
      usesSeeking({ fps, durationMs: video.durationMs }) ||
      !mayFanOut(expectedFrames(video, fps, fields.maxFrames), o.segmentFrames, batchSize);
    if (onePass) return planSegments(null, o);
    const scan = await scanFrameTimes(this.deps.ffprobe, file, { maxDecodedFrames });
    return planSegments(scan?.times ?? null, o);
  }

  async get(id: string): Promise<JobView | undefined> {
    const job = await this.find(id);
    return job ? this.viewOf(job) : undefined;
  }

  async cancel(id: string): Promise<boolean> {
    const job = await this.find(id);
    if (!job) return false;
    // Its webhook's summary is taken now: the job is forgotten below (an unfinished job only: DELETE of a finished one just forgets it).
    const event = job.data.callbackUrl ? await this.redis(() => this.cancelledSummary(job)) : null;
    await this.redis(async () => {
      await this.client.set(cancelKey(id), '1', 'PX', this.limits.ttlMs);
      await this.client.publish(CONTROL_CHANNEL, `cancel:${id}`);
    });
    if (event && job.data.callbackUrl) {
      const url = job.data.callbackUrl;
      await this.redis(() => this.webhooks.enqueue(url, event));
    }
    // Nothing of it running: gone now. Else the replicas running its segments stop them, and the last to stop removes it.
    if (await this.forget(id)) this.finish(id, cancelledSummary(id));
    return true;
  }

  /** The summary a DELETE gives an unfinished job (frames posed so far); null when it has already ended. */
  private async cancelledSummary(job: BullJob<DurableJobData>): Promise<JobSummary | null> {
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return null;
    const done = await this.framesDone(job);
    return summaryOf(this.viewFrom(job, 'cancelled', CANCELLED, done));
  }

  /**
   * A job ended (the queue's events, on every replica): its webhook's event is queued. Every replica
   * queues it under the same delivery id, so it is queued once; a cancel's was queued by the DELETE.
   */
  private async notify(id: string, ended: { returnvalue?: unknown; failedReason?: string }): Promise<void> {
    try {
      const job = await this.jobs.getJob(id);
      const url = job?.data.callbackUrl;
      if (!job || !url) return;
      let summary: JobSummary;
      if (ended.failedReason === undefined) {
        // QueueEvents gives the merge's return parsed (typed as its JSON text): either is read.
        const value = typeof ended.returnvalue === 'string' ? JSON.parse(ended.returnvalue) : ended.returnvalue;
        const frames = (value as Partial<MergeReturn> | null)?.frames ?? job.data.expected;
        summary = summaryOf(this.viewFrom(job, 'succeeded', null, frames));
      } else {
        const error = parseError(ended.failedReason);
        const state = error.code === 'CANCELLED' ? 'cancelled' : 'failed';
        summary = summaryOf(this.viewFrom(job, state, error, await this.framesDone(job)));
      }
      await this.webhooks.enqueue(url, summary);
    } catch (err) {
      // Another replica that saw the same end queues the same event; this one says why it could not.
      this.deps.log.warn({ jobId: id, err: (err as Error).message }, 'webhook: the event could not be queued here');
    }
  }

  /** A cancelled job, its segments and its files go; false while a segment or the merge still runs (it removes them as it stops). */
  private async forget(id: string): Promise<boolean> {
    try {
      await this.storage.remove(id);
      return (await this.jobs.remove(id, { removeChildren: true })) === 1;
    } catch (err) {
      this.noteError(err as Error);
      return false;
    }
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

  async frames(id: string, from: number, signal: AbortSignal): Promise<AsyncIterable<JobFramesChunk> | null> {
    const job = await this.find(id);
    if (!job) return null;
    return storedFrames({
      storage: this.storage,
      id,
      data: job.data,
      from,
      signal,
      ended: async () => {
        const view = await this.get(id).catch(() => null);
        if (view === null) return null; // Redis away: the reader waits
        if (!view) return cancelledSummary(id);
        return FINISHED_STATES.has(view.state) ? summaryOf(view) : null;
      },
    });
  }

  /**
   * Jobs by state, across every replica. Running: a segment of it is being posed, or its result merged; a job
   * between segments (each posed or waiting) counts as queued.
   */
  async countsByState(): Promise<Record<JobState, number>> {
    const [c, active] = await this.redis(() =>
      Promise.all([
        this.jobs.getJobCounts('waiting-children', 'waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'),
        this.segments.getActive(0, 999),
      ]),
    );
    const posing = new Set(active.map((s) => s?.data?.job)).size;
    const waitingChildren = c['waiting-children'];
    return {
      queued: Math.max(0, waitingChildren - posing) + c.delayed + c.prioritized,
      running: Math.min(posing, waitingChildren) + c.active + c.waiting,
      succeeded: c.completed,
      failed: c.failed,
      cancelled: 0,
    };
  }

  /** The whole queue's work (the HPA's signal): segments waiting or being posed, and merges. */
  async queueDepth(): Promise<number> {
    const [s, j] = await this.redis(() =>
      Promise.all([this.segments.getJobCounts('waiting', 'delayed', 'prioritized', 'active'), this.jobs.getJobCounts('waiting', 'active')]),
    );
    return [...Object.values(s), ...Object.values(j)].reduce((a, b) => a + b, 0);
  }

  /** Shutdown: take no more segments; running ones finish their batches in flight and go back to the queue. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    clearInterval(this.poller);
    this.runs.drain();
    const closed = Promise.all(this.workers.map((w) => w.close()));
    const webhooksClosed = this.webhooks.close(graceMs);
    const graceOver = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
    if ((await Promise.race([closed.then(() => 'closed' as const), graceOver])) === 'late') {
      this.runs.abandon();
      await closed;
    }
    await webhooksClosed;
    await Promise.allSettled([...this.events.map((e) => e.close()), this.flows.close(), this.jobs.close(), this.segments.close()]);
    for (const redis of this.connections) redis.disconnect();
  }

  /** QueueEvents of jobs and their segments → this replica's event streams. */
  private listen(): void {
    const [jobEvents, segmentEvents] = this.events;
    const update = ({ jobId }: { jobId: string }) => void this.update(jobId);
    jobEvents.on('active', update);
    jobEvents.on('waiting', update);
    jobEvents.on('completed', ({ jobId, returnvalue }) => {
      void this.update(jobId);
      void this.notify(jobId, { returnvalue });
    });
    jobEvents.on('failed', ({ jobId, failedReason }) => {
      void this.notify(jobId, { failedReason: failedReason ?? '' });
      if (parseError(failedReason).code === 'CANCELLED') this.finish(jobId, cancelledSummary(jobId));
      else void this.update(jobId);
    });
    jobEvents.on('removed', ({ jobId }) => this.finish(jobId, cancelledSummary(jobId)));
    const updateJob = ({ jobId }: { jobId: string }) => void this.update(jobOfSegment(jobId));
    segmentEvents.on('active', updateJob);
    segmentEvents.on('progress', updateJob);
    segmentEvents.on('completed', updateJob);
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
    if (!view) this.finish(id, cancelledSummary(id));
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
    const [job, cancelled] = await this.redis(() => Promise.all([this.jobs.getJob(id), this.client.exists(cancelKey(id))]));
    if (!job || cancelled) return undefined;
    if (job.finishedOn && job.finishedOn + this.limits.ttlMs < Date.now()) return undefined;
    return job;
  }

  private async viewOf(job: BullJob<DurableJobData>): Promise<JobView> {
    const error = job.failedReason ? parseError(job.failedReason) : null;
    const bullState = await this.redis(() => job.getState());
    const started = Boolean((job.progress as Partial<JobStart>)?.startedAt);
    const state = stateOf(bullState, started, error);
    if (state === 'succeeded') {
      const json = await this.storage.readResult(job.id as string);
      const result = json ? (JSON.parse(json) as JobView['result']) : undefined;
      return this.viewFrom(job, state, error, result?.frames.length ?? job.data.expected, result);
    }
    // Every segment posed: the merge is next (or under way).
    const merging = bullState === 'waiting' || bullState === 'active' || bullState === 'delayed';
    return this.viewFrom(job, state, error, merging && started ? job.data.expected : await this.framesDone(job));
  }

  /** Frames posed so far over the job's segments: those finished (their count, kept in the job) and those running. */
  private async framesDone(job: BullJob<DurableJobData>): Promise<number> {
    const id = job.id as string;
    const n = job.data.segments.length;
    const [processed, ...running] = await this.redis(async () => {
      const values = await job.getChildrenValues<SegmentReturn>();
      const finished = new Set(Object.keys(values).map((key) => key.slice(key.lastIndexOf(':') + 1)));
      const ids = Array.from({ length: n }, (_, k) => segmentId(id, k)).filter((s) => !finished.has(s));
      return [values, ...(await Promise.all(ids.map((s) => this.segments.getJob(s))))] as const;
    });
    let done = 0;
    for (const v of Object.values(processed)) done += v?.frames ?? 0;
    for (const s of running) done += (s?.progress as Partial<SegmentProgress> | undefined)?.done ?? 0;
    return done;
  }

  private viewFrom(
    job: BullJob<DurableJobData>,
    state: JobState,
    error: JobError | null,
    done: number,
    result?: JobView['result'],
  ): JobView {
    const id = job.id as string;
    const expected = job.data.expected;
    const total = state === 'succeeded' ? done : Math.max(expected, done);
    const startedAt = (job.progress as Partial<JobStart>)?.startedAt ?? job.processedOn;
    return {
      id,
      state,
      progress: jobProgress(done, total, state === 'succeeded'),
      ...(error && state !== 'succeeded' ? { error } : {}),
      links: { self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` },
      createdAt: new Date(job.timestamp).toISOString(),
      ...(startedAt ? { startedAt: new Date(startedAt).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
      ...(job.finishedOn ? { expiresAt: new Date(job.finishedOn + this.limits.ttlMs).toISOString() } : {}),
      video: publicVideo(job.data.video),
      ...(result ? { result } : {}),
    };
  }

  /** Finished jobs past JOBS_TTL_S, their segments, keys and files, and orphan folders go (any replica may do it). */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const ttl = this.limits.ttlMs;
      const expired = [...(await this.jobs.clean(ttl, 1000, 'completed')), ...(await this.jobs.clean(ttl, 1000, 'failed'))];
      await this.segments.clean(ttl, 1000, 'failed');
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

/** The API's state of a job from its BullMQ state (a job waits for its segments, then runs to merge them). */
function stateOf(bullState: string, started: boolean, error: JobError | null): JobState {
  switch (bullState) {
    case 'completed':
      return 'succeeded';
    case 'failed':
      return error?.code === 'CANCELLED' ? 'cancelled' : 'failed';
    case 'active':
      return 'running';
    default:
      // Waiting for its segments, or for its merge: running once a segment has started.
      return started ? 'running' : 'queued';
  }
}

/** A failed run BullMQ will not try again. */
function isFinal(job: BullJob): boolean {
  return job.attemptsMade >= (job.opts.attempts ?? 1) || isOurs(job.failedReason);
}

function cancelledSummary(id: string): JobSummary {
  return {
    id,
    state: 'cancelled',
    progress: jobProgress(0, 0, false),
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
