/**
 * Admission control for videos: at most `active` at once, up to `queued` more waiting in order,
 * and beyond that BUSY (503 with Retry-After) at once: a bounded queue, never an unbounded pile.
 */
import { ApiError } from './errors.js';

export class Admission {
  private running = 0;
  private readonly waiting: { resolve: (release: () => void) => void; reject: (e: unknown) => void }[] = [];
  private closed = false;

  constructor(
    private readonly active: number,
    private readonly queued: number,
    private readonly retryAfterS = 5,
  ) {}

  get stats(): { active: number; queued: number } {
    return { active: this.running, queued: this.waiting.length };
  }

  /** Resolves with a release function once the video may run. */
  enter(signal?: AbortSignal): Promise<() => void> {
    if (this.closed) return Promise.reject(new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: this.retryAfterS }));
    if (this.running < this.active) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queued) {
      return Promise.reject(
        new ApiError('BUSY', `the server is busy: ${this.running} videos in progress and ${this.waiting.length} waiting`, {
          retryAfterS: this.retryAfterS,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject };
      this.waiting.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) {
            this.waiting.splice(i, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
    });
  }

  /** Refuse new videos and the ones still waiting (shutdown). */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: this.retryAfterS }));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.resolve(this.releaser());
      else this.running--;
    };
  }
}
