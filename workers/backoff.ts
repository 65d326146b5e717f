/**
 * Capped exponential backoff for restarting a worker: initialMs, doubling, at most maxMs.
 * The supervisor resets it once a worker has stayed ready for `resetAfterMs`.
 */
export interface BackoffOptions {
  /** First delay (default 1000 ms). */
  initialMs?: number;
  /** Cap (default 60000 ms). */
  maxMs?: number;
  /** Growth factor (default 2). */
  factor?: number;
  /** A worker ready at least this long resets the sequence (default 30000 ms). */
  resetAfterMs?: number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly resetAfterMs: number;
  private failures = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = Math.max(0, opts.initialMs ?? 1000);
    this.maxMs = Math.max(this.initialMs, opts.maxMs ?? 60_000);
    this.factor = Math.max(1, opts.factor ?? 2);
    this.resetAfterMs = Math.max(0, opts.resetAfterMs ?? 30_000);
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The delay before the next attempt, and counts this failure: 1 s, 2 s, 4 s, … 60 s, 60 s. */
  next(): number {
    const delay = Math.min(this.maxMs, this.initialMs * this.factor ** this.failures);
    this.failures++;
    return delay;
  }

  /** The delay `next()` would return, without counting. */
  peek(): number {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.failures);
  }

  reset(): void {
    this.failures = 0;
  }
}
