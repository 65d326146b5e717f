/**
 * Webhooks of the memory engine: each event is attempted from this process as its job ends, and
 * tried again from an unref'd timer after the backoff. Like the jobs themselves they live in this
 * process: at shutdown, attempts under way and retries that come due within the grace period go
 * on; at its end (or at once, for a retry due later) what is left is given up, and logged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobSummary } from './job.js';
import { type WebhookEvent, type WebhookQueue, type WebhookSender, webhookEvent } from './webhooks.js';

export class MemoryWebhooks implements WebhookQueue {
  private readonly deliveries = new Set<Promise<void>>();
  /** Aborts the attempts under way (the grace period is over). */
  private readonly stop = new AbortController();
  /** Events waiting for their next attempt: the switch that wakes each early (to give it up), and when it is due. */
  private readonly waiting = new Map<AbortController, number>();
  /** Set by close(): a retry due after it will not be made. */
  private deadline: number | null = null;

  constructor(private readonly sender: WebhookSender) {}

  async enqueue(callbackUrl: string, summary: JobSummary): Promise<void> {
    const event = webhookEvent(callbackUrl, summary);
    if (this.stop.signal.aborted) return this.sender.abandoned(event, 0);
    const delivery = this.deliver(event);
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }

  private async deliver(event: WebhookEvent): Promise<void> {
    for (let n = 1; ; n++) {
      if ((await this.sender.attempt(event, n, this.stop.signal)) !== 'retry') return;
      const dueAt = Date.now() + this.sender.backoffMs(n);
      if (this.stop.signal.aborted || (this.deadline !== null && dueAt > this.deadline)) return this.sender.abandoned(event, n);
      const wake = new AbortController();
      this.waiting.set(wake, dueAt);
      await sleep(dueAt - Date.now(), undefined, { signal: wake.signal, ref: false }).catch(() => undefined);
      this.waiting.delete(wake);
      if (wake.signal.aborted) return this.sender.abandoned(event, n);
    }
  }

  async close(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.deadline = deadline;
    for (const [wake, dueAt] of this.waiting) if (dueAt > deadline) wake.abort();
    const graceOver = new AbortController();
    await Promise.race([
      Promise.allSettled([...this.deliveries]),
      sleep(graceMs, undefined, { signal: graceOver.signal, ref: false }).catch(() => undefined),
    ]);
    graceOver.abort();
    this.stop.abort();
    for (const wake of this.waiting.keys()) wake.abort();
    await Promise.allSettled([...this.deliveries]);
  }
}
