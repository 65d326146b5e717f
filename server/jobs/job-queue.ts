/**
 * Where jobs live and run. Two engines behind one interface, with the same HTTP contract:
 *   memory  (default) the accepting process holds and runs each job (server/jobs/memory-queue.ts)
 *   redis   REDIS_URL: BullMQ on Redis, uploads and results in POSE_STORAGE_DIR; any replica
 *           serves any job and a crashed replica's job resumes elsewhere (server/jobs/redis-queue.ts)
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ReceivedVideo } from '../upload/receive-video.js';
import type { JobFramesChunk, JobState, JobSummary, JobView } from './job.js';

export interface JobSubmission {
  id: string;
  received: ReceivedVideo;
  /** The upload's temporary directory (removed once `running` ends). */
  dir: string;
  /** Sampled frames the job will have (progress's `expected`). */
  expected: number;
  /** The admission slot taken while the upload was received (engines that admit on acceptance). */
  slot?: Promise<() => void>;
  /** Aborted when the job is cancelled before it runs (withdraws it from the admission queue). */
  cancelUpload: AbortController;
  log: FastifyBaseLogger;
}

export interface SubmittedJob {
  view: JobView;
  /** Work that must end before the upload's temporary directory goes (memory: the whole run). */
  running?: Promise<void>;
}

/** A job's progress or end, as the events route streams it. */
export type JobListener = (summary: JobSummary, finished: boolean) => void;

export interface JobQueueHealth {
  engine: 'memory' | 'redis';
  status: 'ready' | 'unavailable';
  /** Why the queue cannot take or serve jobs, and the fix. */
  lastError?: { message: string; hint: string };
}

export interface JobQueue {
  readonly engine: 'memory' | 'redis';
  /** The engine runs a job in the accepting process, so its admission slot is taken with the upload. */
  readonly admitsOnAcceptance: boolean;
  /** Refuses (BUSY, SHUTTING_DOWN, QUEUE_UNAVAILABLE) before the upload is read. */
  assertRoom(): Promise<void>;
  submit(job: JobSubmission): Promise<SubmittedJob>;
  get(id: string): Promise<JobView | undefined>;
  /** Cancels an unfinished job and forgets it; false when there is no such job. */
  cancel(id: string): Promise<boolean>;
  /** Follows a job: the listener gets its summary now and on every change; null when there is no such job. */
  watch(id: string, listener: JobListener): Promise<(() => void) | null>;
  /** A job's final frames from index `from`, in chunks as they are posed, then its end; null when there is no such job. */
  frames(id: string, from: number, signal: AbortSignal): Promise<AsyncIterable<JobFramesChunk> | null>;
  countsByState(): Promise<Record<JobState, number>>;
  /** Work waiting or under way (the autoscaling signal): memory, its jobs queued or running; redis, the segments of every replica's. */
  queueDepth(): Promise<number>;
  health(): JobQueueHealth;
  /** Shutdown: no new jobs; running ones get `graceMs`, then stop (memory: fail; redis: hand back). */
  close(graceMs: number): Promise<void>;
}
