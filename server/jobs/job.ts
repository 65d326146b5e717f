/**
 * One pose job: its state machine (queued → running → succeeded | failed, or cancelled from
 * either), progress, and result. Emits 'update' on every change and 'finished' once.
 */
import { EventEmitter } from 'node:events';
import type { VideoInfo } from '../media/probe.js';
import type { PoseResponse } from '../pipeline/pose-response.js';
import type { TimedFrameResult } from '../pipeline/pose-video.js';

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINISHED_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export interface JobError {
  code: string;
  message: string;
  [detail: string]: unknown;
}

/** Job-only error code: the result's JSON exceeded JOB_RESULT_MAX_MB. */
export const RESULT_TOO_LARGE = 'RESULT_TOO_LARGE';

export interface JobSummary {
  id: string;
  state: JobState;
  progress: { done: number; expected: number; fraction: number };
  error?: JobError;
  links: { self: string; events: string };
}

/** What GET /api/jobs/:id/frames streams: final frames in order, in chunks, then the job's end. */
export type JobFramesChunk = { frames: PoseResponse['frames'] } | { end: JobSummary };

export interface JobView extends JobSummary {
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  expiresAt?: string;
  video: Omit<VideoInfo, 'frameCount' | 'maxFps'>;
  result?: PoseResponse;
}

/** What a job shows of its video (the probe's frame count and fps cap are internal). */
export function publicVideo(video: VideoInfo): JobView['video'] {
  const { frameCount: _frames, maxFps: _cap, ...shown } = video;
  return shown;
}

/** A job's progress as the API shows it: frames done of expected, and their fraction (1 once succeeded, whatever was expected). */
export function jobProgress(done: number, expected: number, succeeded: boolean): JobSummary['progress'] {
  const fraction = expected > 0 ? Math.min(1, done / expected) : succeeded ? 1 : 0;
  return { done, expected, fraction: Math.round(fraction * 1000) / 1000 };
}

/** A view's summary (what the events stream sends). */
export function summaryOf(view: JobView): JobSummary {
  const { id, state, progress, error, links } = view;
  return { id, state, progress, ...(error ? { error } : {}), links };
}

export class Job extends EventEmitter {
  readonly id: string;
  readonly createdAt = new Date();
  /** performance.now() at acceptance: the result's elapsedMs counts from it (queueing included). */
  readonly acceptedAt = performance.now();
  /** Aborted by DELETE, the job timeout or shutdown; its reason becomes the job's error. */
  readonly abort = new AbortController();
  readonly video: Omit<VideoInfo, 'frameCount' | 'maxFps'>;
  state: JobState = 'queued';
  startedAt?: Date;
  finishedAt?: Date;
  expiresAt?: Date;
  done = 0;
  expected: number;
  error?: JobError;
  result?: PoseResponse;
  resultBytes = 0;
  /** Final frames while the job runs, in order (the pipeline's own objects); dropped once the result holds them. */
  final: TimedFrameResult[] = [];

  constructor(id: string, video: VideoInfo, expectedFrames: number) {
    super();
    // Every open event stream listens; their number is bounded by connections, not by this.
    this.setMaxListeners(0);
    this.id = id;
    this.video = publicVideo(video);
    this.expected = expectedFrames;
  }

  get finished(): boolean {
    return FINISHED_STATES.has(this.state);
  }

  start(): void {
    if (this.state !== 'queued') return;
    this.state = 'running';
    this.startedAt = new Date();
    this.emit('update');
  }

  /** Frames that became final (events 'frames'). */
  addFrames(frames: TimedFrameResult[]): void {
    if (this.finished) return;
    this.final.push(...frames);
    this.emit('frames');
  }

  progress(done: number, expected: number): void {
    if (this.finished) return;
    this.done = done;
    this.expected = Math.max(expected, done);
    this.emit('update');
  }

  succeed(result: PoseResponse, bytes: number): void {
    if (this.finished) return;
    this.result = result;
    this.final = [];
    this.resultBytes = bytes;
    this.done = result.frames.length;
    this.expected = result.frames.length;
    this.finish('succeeded');
  }

  fail(error: JobError): void {
    if (this.finished) return;
    this.error = error;
    this.finish('failed');
  }

  cancel(message = 'the job was cancelled (DELETE /api/jobs/:id)'): void {
    if (this.finished) return;
    this.error = { code: 'CANCELLED', message };
    this.finish('cancelled');
    this.abort.abort(new Error(message));
  }

  summary(): JobSummary {
    return {
      id: this.id,
      state: this.state,
      progress: jobProgress(this.done, this.expected, this.state === 'succeeded'),
      ...(this.error ? { error: this.error } : {}),
      links: { self: `/api/jobs/${this.id}`, events: `/api/jobs/${this.id}/events` },
    };
  }

  view(): JobView {
    return {
      ...this.summary(),
      createdAt: this.createdAt.toISOString(),
      ...(this.startedAt ? { startedAt: this.startedAt.toISOString() } : {}),
      ...(this.finishedAt ? { finishedAt: this.finishedAt.toISOString() } : {}),
      ...(this.expiresAt ? { expiresAt: this.expiresAt.toISOString() } : {}),
      video: this.video,
      ...(this.result ? { result: this.result } : {}),
    };
  }

  private finish(state: 'succeeded' | 'failed' | 'cancelled'): void {
    this.state = state;
    this.finishedAt = new Date();
    this.emit('update');
    this.emit('finished');
  }
}
