/**
 * Resident memory of a process: the kernel's peak (VmHWM, Linux) and current (VmRSS) values from
 * /proc/PID/status, with `ps -o rss=` as the fallback elsewhere (current only: a sampler keeps the peak).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcMemory {
  rssKb: number;
  /** Peak resident set size since the process started (NaN where the OS does not say). */
  hwmKb: number;
}

export function procMemory(pid: number): ProcMemory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  } catch {
    /* not Linux, or the process is gone */
  }
  try {
    const out = execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return out ? { rssKb: Number(out), hwmKb: NaN } : null;
  } catch {
    return null;
  }
}

/** Samples a set of processes every `everyMs` and keeps each one's highest resident size. */
export class PeakSampler {
  private readonly peaks = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pids: () => number[],
    private readonly everyMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    for (const pid of this.pids()) {
      const m = procMemory(pid);
      if (!m) continue;
      const best = Math.max(this.peaks.get(pid) ?? 0, m.rssKb, Number.isFinite(m.hwmKb) ? m.hwmKb : 0);
      this.peaks.set(pid, best);
    }
  }

  /** Stops sampling; each process's peak in kB. */
  stop(): Map<number, number> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return new Map(this.peaks);
  }
}
