/**
 * The embedded engine: jobs in this process's memory (JobStore), each run here after its
 * admission slot (taken with the upload) comes free. Lost with the process; one machine needs no more.
 * A job with a callbackUrl has its webhook sent from here as it ends (webhook-memory.ts).
 */

import type { JobsConfig } from '../config.js';
import { ApiError } from '../errors.js';
import { publicFrame } from '../pipeline/pose-response.js';
import type { PoseRequestDeps } from '../pipeline/pose-video-request.js';
import { Job, type JobFramesChunk, type JobState } from './job.js';
import type { JobListener, JobQueue, JobQueueHealth, JobSubmission, SubmittedJob } from './job-queue.js';
import { JobStore } from './job-store.js';
import { runJob } from './run-job.js';
import type { WebhookQueue } from './webhooks.js';

/** Frames per chunk a reader is given at once. */
const FRAMES_CHUNK = 64;

/** A job's final frames from `from` as they come (read by index from the job: nothing is copied per reader), then its end. */
async function* framesOf(job: Job, from: number, signal: AbortSignal): AsyncGenerator<JobFramesChunk> {
  let next = from;
  while (!signal.aborted) {
    const result = job.result?.frames;
    const have = result ? result.length : job.final.length;
    if (have > next) {
      const to = Math.min(have, next + FRAMES_CHUNK);
      yield { frames: result ? result.slice(next, to) : job.final.slice(next, to).map(publicFrame) };
      next = to;
      continue;
    }
    if (job.finished) {
      yield { end: job.summary() };
      return;
    }
    await new Promise<void>((resolve) => {
      const wake = () => {
        job.off('frames', wake);
        job.off('finished', wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      job.on('frames', wake);
      job.on('finished', wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }
}

export class MemoryJobQueue implements JobQueue {
  readonly engine = 'memory' as const;
  readonly admitsOnAcceptance = true;
  private readonly store: JobStore;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly limits: JobsConfig,
    /** The pipeline's dependencies, less the job's own temporary directory. */
    private readonly deps: Omit<PoseRequestDeps, 'tempDir'>,
    private readonly webhooks: WebhookQueue,
  ) {
    this.store = new JobStore(limits);
  }

  async assertRoom(): Promise<void> {
    this.store.assertRoom();
  }

  async submit({ id, received, dir, expected, slot, cancelUpload, log }: JobSubmission): Promise<SubmittedJob> {
    if (!slot) throw new Error('the memory engine runs a job with the admission slot taken at acceptance');
    const job = new Job(id, received.video, expected);
    this.store.add(job);
    const { callbackUrl } = received;
    // However it ends (done, failed, DELETE, timeout, shutdown): its summary then is the event's.
    if (callbackUrl) job.once('finished', () => void this.webhooks.enqueue(callbackUrl, job.summary()));
    // The job's own signal (DELETE, timeout, shutdown) also withdraws it from the admission queue.
    job.abort.signal.addEventListener('abort', () => cancelUpload.abort(job.abort.signal.reason), { once: true });
    log.info({ expected: job.expected }, 'job accepted');
    const running = runJob(job, {
      slot,
      received,
      deps: { ...this.deps, tempDir: dir },
      limits: this.limits,
      log,
    });
    this.running.add(running);
    void running.finally(() => this.running.delete(running));
    return { view: job.view(), running };
  }

  async get(id: string) {
    return this.store.get(id)?.view();
  }

  async cancel(id: string): Promise<boolean> {
    const job = this.store.get(id);
    if (!job) return false;
    job.cancel();
    this.store.delete(job.id);
    return true;
  }

  async watch(id: string, listener: JobListener): Promise<(() => void) | null> {
    const job = this.store.get(id);
    if (!job) return null;
    listener(job.summary(), job.finished);
    if (job.finished) return () => {};
    const onUpdate = () => {
      if (!job.finished) listener(job.summary(), false);
    };
    const onFinished = () => {
      stop();
      listener(job.summary(), true);
    };
    const stop = () => {
      job.off('update', onUpdate);
      job.off('finished', onFinished);
    };
    job.on('update', onUpdate);
    job.once('finished', onFinished);
    return stop;
  }

  async frames(id: string, from: number, signal: AbortSignal): Promise<AsyncIterable<JobFramesChunk> | null> {
    const job = this.store.get(id);
    return job ? framesOf(job, from, signal) : null;
  }

  async countsByState(): Promise<Record<JobState, number>> {
    return this.store.countsByState();
  }

  async queueDepth(): Promise<number> {
    const counts = this.store.countsByState();
    return counts.queued + counts.running;
  }

  health(): JobQueueHealth {
    return { engine: 'memory', status: 'ready' };
  }

  /** No new jobs; queued ones end with SHUTTING_DOWN; running ones, then webhooks, get the grace period. */
  async close(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.store.close();
    const stop = (j: Job) => j.abort.abort(new ApiError('SHUTTING_DOWN', 'the server stopped before the job finished'));
    for (const job of this.store.unfinished()) if (job.state === 'queued') stop(job);
    const graceOver = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([Promise.allSettled([...this.running]), graceOver]);
    for (const job of this.store.unfinished()) stop(job);
    await Promise.allSettled([...this.running]);
    await this.webhooks.close(Math.max(0, deadline - Date.now()));
  }
}
