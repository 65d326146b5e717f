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
    /** What is counted, for the BUSY message ("videos", "uploads"). */
    private readonly what = 'videos',
  ) {}

  get stats(): { active: number; queued: number } {
    return { active: this.running, queued: this.waiting.length };
  }

  /**
   * A place now or in the queue: `slot` resolves with a release function once the video may run.
   * Refusal is synchronous: BUSY (no place) or SHUTTING_DOWN is thrown here, never a later rejection.
   */
  tryEnter(signal?: AbortSignal): { slot: Promise<() => void> } {
    if (signal?.aborted) throw signal.reason; // its 'abort' event has fired already: it could never leave the queue
    this.assertRoom();
    if (this.running < this.active) {
      this.running++;
      return { slot: Promise.resolve(this.releaser()) };
    }
    const slot = new Promise<() => void>((resolve, reject) => {
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
    return { slot };
  }

  /** Resolves with a release function once the video may run; rejects at once when there is no place. */
  async enter(signal?: AbortSignal): Promise<() => void> {
    return this.tryEnter(signal).slot;
  }

  /** Throws what tryEnter() would refuse with (BUSY, SHUTTING_DOWN), taking nothing: the cheap check before a body is read. */
  assertRoom(): void {
    if (this.closed) throw new ApiError('SHUTTING_DOWN', undefined, { retryAfterS: this.retryAfterS });
    if (this.running >= this.active && this.waiting.length >= this.queued) {
      throw new ApiError('BUSY', `the server is busy: ${this.running} ${this.what} in progress and ${this.waiting.length} waiting`, {
        retryAfterS: this.retryAfterS,
      });
    }
  }

  /** Gives back a slot from tryEnter() that was never used (the upload was refused, the job cancelled). */
  static giveBack(slot: Promise<() => void>): void {
    slot.then(
      (release) => release(),
      () => undefined,
    );
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
