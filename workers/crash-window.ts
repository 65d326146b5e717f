/**
 * Counts a slot's crashes in a sliding time window: `crashes` of them within `windowMs` make a
 * crash loop (the slot shows `failed` in /health while its restarts continue with backoff).
 */
export interface CrashLoopOptions {
  /** Crashes that make a loop (default 3). */
  crashes?: number;
  /** Window (default 60000 ms). */
  windowMs?: number;
}

export class CrashWindow {
  readonly crashes: number;
  readonly windowMs: number;
  private times: number[] = [];

  constructor(
    opts: CrashLoopOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.crashes = Math.max(1, opts.crashes ?? 3);
    this.windowMs = Math.max(1, opts.windowMs ?? 60_000);
  }

  record(): void {
    this.times.push(this.now());
    this.prune();
  }

  /** Crashes inside the window now. */
  get count(): number {
    this.prune();
    return this.times.length;
  }

  get looping(): boolean {
    return this.count >= this.crashes;
  }

  private prune(): void {
    const since = this.now() - this.windowMs;
    while (this.times.length > 0 && this.times[0] <= since) this.times.shift();
    if (this.times.length > this.crashes * 4) this.times = this.times.slice(-this.crashes * 4);
  }
}
