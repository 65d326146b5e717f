/** The memory engine's webhook retries, with a scripted sender: the loop, and shutdown within its grace. */
import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../jobs/job.js';
import { MemoryWebhooks } from '../jobs/webhook-memory.js';
import type { WebhookEvent, WebhookOutcome, WebhookSender } from '../jobs/webhooks.js';

const summary: JobSummary = {
  id: '3eed0000-0000-4000-8000-000000000000',
  state: 'succeeded',
  progress: { done: 4, expected: 4, fraction: 1 },
  links: { self: '/api/jobs/3eed0000-0000-4000-8000-000000000000', events: '/api/jobs/3eed0000-0000-4000-8000-000000000000/events' },
};

/** A sender whose attempts answer from a script (each after `ms`, or at once when aborted), waiting `backoffMs` between. */
function scripted(outcomes: WebhookOutcome[], opts: { backoffMs: number; attemptMs?: number }) {
  const attempts: number[] = [];
  const given: number[] = [];
  const sender = {
    backoffMs: () => opts.backoffMs,
    async attempt(_event: WebhookEvent, n: number, signal?: AbortSignal): Promise<WebhookOutcome> {
      attempts.push(n);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.attemptMs ?? 0);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return signal?.aborted ? 'retry' : (outcomes[n - 1] ?? 'delivered');
    },
    abandoned: (_event: WebhookEvent, n: number) => given.push(n),
  };
  return { sender: sender as unknown as WebhookSender, attempts, given };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('MemoryWebhooks', () => {
  it('tries again after each retry until an attempt ends it', async () => {
    const { sender, attempts, given } = scripted(['retry', 'retry', 'delivered'], { backoffMs: 20 });
    const webhooks = new MemoryWebhooks(sender);
    await webhooks.enqueue('https://hooks.example.com/x', summary);
    await until(() => attempts.length === 3);
    await webhooks.close(1000);
    expect(attempts).toEqual([1, 2, 3]);
    expect(given).toEqual([]);
  });

  it('at shutdown a retry due after the grace period is given up at once', async () => {
    const { sender, attempts, given } = scripted(['retry'], { backoffMs: 60_000 });
    const webhooks = new MemoryWebhooks(sender);
    await webhooks.enqueue('https://hooks.example.com/x', summary);
    await until(() => attempts.length === 1);
    const started = Date.now();
    await webhooks.close(5000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(given).toEqual([1]);
  });

  it('at shutdown a retry due within the grace period is made; an attempt longer than the grace is cut short', async () => {
    const soon = scripted(['retry', 'delivered'], { backoffMs: 50 });
    const webhooks = new MemoryWebhooks(soon.sender);
    await webhooks.enqueue('https://hooks.example.com/x', summary);
    await until(() => soon.attempts.length === 1);
    await webhooks.close(2000);
    expect(soon.attempts).toEqual([1, 2]);
    expect(soon.given).toEqual([]);

    const slow = scripted([], { backoffMs: 50, attemptMs: 60_000 });
    const cut = new MemoryWebhooks(slow.sender);
    await cut.enqueue('https://hooks.example.com/x', summary);
    const started = Date.now();
    await cut.close(200);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(slow.given).toEqual([1]);
    // After shutdown an event is given up without an attempt.
    await cut.enqueue('https://hooks.example.com/x', summary);
    expect(slow.attempts).toEqual([1]);
    expect(slow.given).toEqual([1, 0]);
  });
});
