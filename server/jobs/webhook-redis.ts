/**
 * Webhooks of the durable engine (REDIS_URL): each event is a job of the BullMQ queue
 * posepool-webhooks, named by its delivery id, so the replicas that see a job end all queue the
 * same entry and BullMQ keeps one. Every replica with a WEBHOOK_SECRET runs a worker on it: one
 * takes each attempt (its lock), a failed attempt goes back to the queue as delayed by the backoff
 * (WEBHOOK_BACKOFF_*), and an attempt cut short by a crash is taken again by another replica once
 * its lock expires. Delivery is at least once: receivers drop repeats by X-Posepool-Delivery.
 */
import { type Job as BullJob, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobSummary } from './job.js';
import { type WebhookEvent, type WebhookQueue, type WebhookSender, webhookEvent } from './webhooks.js';

export const WEBHOOKS_QUEUE = 'posepool-webhooks';
/** Attempts of different events under way at once in one replica (each is mostly waiting on the network). */
const CONCURRENCY = 16;
/** Entries kept besides their age bound, so that Redis stays flat whatever passes. */
const KEEP_COUNT = 10_000;

export interface RedisWebhooksDeps {
  sender: WebhookSender;
  /** For adding events (fails fast while Redis is away). */
  connection: Redis;
  /** The worker's blocking connection; null: this replica sends none (no WEBHOOK_SECRET). */
  workerConnection: Redis | null;
  /** How long a finished entry (delivered or given up) is kept: while it is, the same event is not queued again. */
  keepS: number;
  onError: (err: Error) => void;
}

export class RedisWebhooks implements WebhookQueue {
  private readonly queue: Queue<WebhookEvent>;
  private readonly worker: Worker<WebhookEvent> | null = null;
  private readonly stop = new AbortController();

  constructor(private readonly deps: RedisWebhooksDeps) {
    const { sender } = deps;
    this.queue = new Queue<WebhookEvent>(WEBHOOKS_QUEUE, { connection: deps.connection, streams: { events: { maxLen: 1000 } } });
    this.queue.on('error', deps.onError);
    if (deps.workerConnection) {
      this.worker = new Worker<WebhookEvent>(WEBHOOKS_QUEUE, (job) => this.process(job), {
        connection: deps.workerConnection,
        concurrency: CONCURRENCY,
        // Longer than any attempt, so that a live replica never loses one to another.
        lockDuration: Math.max(30_000, 2 * sender.config.timeoutMs),
        settings: { backoffStrategy: (attemptsMade: number) => sender.backoffMs(attemptsMade) },
      });
      this.worker.on('error', deps.onError);
    }
  }

  async enqueue(callbackUrl: string, summary: JobSummary): Promise<void> {
    const event = webhookEvent(callbackUrl, summary);
    const keep = { age: this.deps.keepS, count: KEEP_COUNT };
    await this.queue.add('webhook', event, {
      jobId: event.delivery,
      attempts: this.deps.sender.config.maxAttempts,
      backoff: { type: 'webhook' },
      removeOnComplete: keep,
      removeOnFail: keep,
    });
  }

  /** One attempt; a throw hands the event back to BullMQ: retried after the backoff, or (UnrecoverableError) given up. */
  private async process(job: BullJob<WebhookEvent>): Promise<void> {
    const outcome = await this.deps.sender.attempt(job.data, job.attemptsMade + 1, this.stop.signal);
    if (outcome === 'delivered') return;
    if (outcome === 'retry') throw new Error('the webhook attempt failed; it will be tried again');
    throw new UnrecoverableError(`webhook ${outcome}`);
  }

  /** Shutdown: attempts under way get `graceMs`, then are cut short (each goes back to the queue for another replica). */
  async close(graceMs: number): Promise<void> {
    if (this.worker) {
      const closed = this.worker.close();
      const timer = setTimeout(() => this.stop.abort(), graceMs);
      timer.unref();
      await closed.catch(this.deps.onError);
      clearTimeout(timer);
    }
    await this.queue.close().catch(this.deps.onError);
  }
}
