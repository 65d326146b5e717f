/**
 * The jobs held in memory, bounded: at most `maxJobs` (when full, the oldest finished job is
 * dropped; when none has finished, a new job is refused with BUSY), and a finished job is
 * forgotten `ttlMs` after it finished.
 */

import type { JobsConfig } from '../config.js';
import { ApiError } from '../errors.js';
import type { Job } from './job.js';
import { JOB_STATES, type JobState } from './job.js';

export class JobStore {
  private readonly jobs = new Map<string, Job>();
  private readonly expiry = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly limits: Pick<JobsConfig, 'maxJobs' | 'ttlMs'>,
    private readonly retryAfterS = 5,
  ) {}

  get size(): number {
    return this.jobs.size;
  }

  /** Throws BUSY (or SHUTTING_DOWN) when a new job could not be kept; cheap, before the upload is read. */
  assertRoom(): void {
    if (this.closed) throw new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: this.retryAfterS });
    if (this.jobs.size < this.limits.maxJobs || this.oldestFinished()) return;
    throw new ApiError('BUSY', `the server holds ${this.jobs.size} unfinished jobs (JOBS_MAX)`, { retryAfterS: this.retryAfterS });
  }

  add(job: Job): void {
    this.assertRoom();
    while (this.jobs.size >= this.limits.maxJobs) {
      const oldest = this.oldestFinished();
      if (!oldest) break;
      this.delete(oldest.id);
    }
    this.jobs.set(job.id, job);
    job.once('finished', () => {
      if (this.jobs.get(job.id) !== job) return;
      job.expiresAt = new Date(Date.now() + this.limits.ttlMs);
      const timer = setTimeout(() => this.delete(job.id), this.limits.ttlMs);
      timer.unref();
      this.expiry.set(job.id, timer);
    });
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  delete(id: string): boolean {
    clearTimeout(this.expiry.get(id));
    this.expiry.delete(id);
    return this.jobs.delete(id);
  }

  unfinished(): Job[] {
    return [...this.jobs.values()].filter((j) => !j.finished);
  }

  countsByState(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const job of this.jobs.values()) counts[job.state]++;
    return counts;
  }

  /** Refuse new jobs (shutdown). Jobs already held stay readable. */
  close(): void {
    this.closed = true;
  }

  private oldestFinished(): Job | undefined {
    for (const job of this.jobs.values()) if (job.finished) return job;
    return undefined;
  }
}
