/**
 * Webhooks of finished jobs: a job posted with a callbackUrl gets one signed POST when it ends
 * (succeeded, failed or cancelled), tried again with capped exponential backoff until the receiver
 * answers 2xx. This file holds what both engines share: the event, its delivery id, and one attempt
 * (policy check, signature, POST, judgement, log line, metrics). Retries are the engines' own:
 * in-process timers (webhook-memory.ts) or a BullMQ queue on Redis (webhook-redis.ts).
 *
 * An attempt's outcome:
 *   delivered  the receiver answered 2xx
 *   retry      anything else that may pass (5xx, 408, 429, 3xx, a timeout, a network or DNS error):
 *              tried again after the backoff while attempts are left
 *   failed     the last attempt failed, or the receiver answered another 4xx (it refuses this
 *              request: sending it again would not help), so the event is given up
 *   refused    the target breaks the SSRF policy on the sending replica (webhook-target.ts): nothing
 *              was sent, and it is not tried again
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { WebhooksConfig } from '../config.js';
import type { JobState, JobSummary } from './job.js';
import { postWebhook, WebhookTimeout } from './webhook-post.js';
import { signWebhook } from './webhook-signature.js';
import { resolveTarget, WebhookRefused } from './webhook-target.js';

export const WEBHOOK_EVENTS = ['job.succeeded', 'job.failed', 'job.cancelled'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
export const WEBHOOK_OUTCOMES = ['delivered', 'retry', 'failed', 'refused'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/** A finished job's event, as queued: everything an attempt needs, on any replica. */
export interface WebhookEvent {
  /** X-Posepool-Delivery: the same on every attempt of the event (receivers drop repeats by it). */
  delivery: string;
  type: WebhookEventType;
  url: string;
  /** The job's summary when it ended (the receiver GETs the result from links.self). */
  job: JobSummary;
}

/** The body of every attempt (sentAt is the attempt's time, as the signature's t). */
export interface WebhookBody {
  type: WebhookEventType;
  job: JobSummary;
  sentAt: string;
}

/** Attempts by outcome, and how long each took (metrics.ts). */
export interface WebhookObserver {
  observeWebhookAttempt(outcome: WebhookOutcome, seconds: number): void;
}

/** Where finished jobs' events wait for their attempts: one per engine. */
export interface WebhookQueue {
  /** Queues the event of a job that has just ended; a job has one event, so a second call for it is ignored. */
  enqueue(callbackUrl: string, summary: JobSummary): Promise<void>;
  /** Shutdown: attempts under way get `graceMs`; what is left is handed on (redis) or given up (memory), and logged. */
  close(graceMs: number): Promise<void>;
}

const EVENT_OF: Partial<Record<JobState, WebhookEventType>> = {
  succeeded: 'job.succeeded',
  failed: 'job.failed',
  cancelled: 'job.cancelled',
};

/** The event of a finished job (it must have ended). */
export function webhookEvent(url: string, job: JobSummary): WebhookEvent {
  const type = EVENT_OF[job.state];
  if (!type) throw new Error(`job ${job.id} is ${job.state}: only a finished job has a webhook`);
  return { delivery: deliveryId(job.id), type, url, job };
}

/**
 * A job ends once, so its event's id follows from the job's: every replica that queues the event
 * names it the same, and BullMQ keeps the first (an id already in the queue is not added again).
 * Shaped as a UUID so that receivers may store it as one.
 */
export function deliveryId(jobId: string): string {
  const h = createHash('sha256').update(`posepool-webhook:${jobId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((Number.parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Makes attempts, and logs and counts each. */
export class WebhookSender {
  constructor(
    readonly config: WebhooksConfig,
    private readonly log: FastifyBaseLogger,
    private readonly observer?: WebhookObserver,
  ) {}

  /** The wait after a failed attempt `n` (1 for the first): WEBHOOK_BACKOFF_INITIAL_MS doubling, capped at WEBHOOK_BACKOFF_MAX_MS. */
  backoffMs(n: number): number {
    const { backoffInitialMs, backoffMaxMs } = this.config;
    return Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(Math.max(0, n - 1), 30));
  }

  /** Attempt `n` of the event; `signal` aborts it (shutdown). */
  async attempt(event: WebhookEvent, n: number, signal?: AbortSignal): Promise<WebhookOutcome> {
    const { secret, timeoutMs, maxAttempts } = this.config;
    const started = performance.now();
    let outcome: WebhookOutcome;
    let status: number | undefined;
    let reason: string | undefined;
    const url = new URL(event.url);
    const last = n >= maxAttempts;
    try {
      // A replica without a secret never sends (and, on Redis, runs no webhook worker: another replica sends).
      if (!secret) throw new WebhookRefused('WEBHOOK_SECRET is not set on this replica: nothing is sent unsigned');
      // One bound for the whole attempt: the lookup (getaddrinfo has its own, longer timeouts) and the exchange.
      const target = await withTimeout(resolveTarget(url, this.config), timeoutMs);
      const remainingMs = Math.max(1, timeoutMs - (performance.now() - started));
      const body = JSON.stringify({ type: event.type, job: event.job, sentAt: new Date().toISOString() } satisfies WebhookBody);
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'posepool-webhooks',
        'x-posepool-event': event.type,
        'x-posepool-delivery': event.delivery,
        'x-posepool-signature': signWebhook(secret, body),
      };
      status = (await postWebhook(url, target, body, headers, { timeoutMs: remainingMs, signal })).status;
      if (status >= 200 && status < 300) outcome = 'delivered';
      else if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        outcome = 'failed';
        reason = `the receiver answered ${status}: it refuses this request, so it is not sent again`;
      } else {
        outcome = last ? 'failed' : 'retry';
        reason =
          status >= 300 && status < 400
            ? `the receiver answered ${status} (redirects are not followed)`
            : `the receiver answered ${status}`;
      }
    } catch (err) {
      if (err instanceof WebhookRefused) outcome = 'refused';
      else outcome = last ? 'failed' : 'retry';
      const code = (err as NodeJS.ErrnoException).code;
      reason = `${(err as Error).message}${code && !(err as Error).message.includes(code) ? ` (${code})` : ''}`;
    }
    const ms = Math.round(performance.now() - started);
    this.observer?.observeWebhookAttempt(outcome, ms / 1000);
    const line = {
      jobId: event.job.id,
      delivery: event.delivery,
      event: event.type,
      // The origin only: a callbackUrl's path or query may hold the receiver's token.
      target: url.origin,
      attempt: n,
      of: maxAttempts,
      outcome,
      ...(status !== undefined ? { status } : {}),
      ms,
      ...(reason ? { reason } : {}),
      ...(outcome === 'retry' ? { retryInMs: this.backoffMs(n) } : {}),
    };
    if (outcome === 'delivered' || outcome === 'retry') this.log.info(line, `webhook ${outcome}`);
    else this.log.warn(line, `webhook ${outcome}`);
    return outcome;
  }

  /** An event left undelivered at shutdown (memory engine: its retries were in this process). */
  abandoned(event: WebhookEvent, attempts: number): void {
    this.log.warn(
      { jobId: event.job.id, delivery: event.delivery, event: event.type, attempts },
      'webhook given up: the server stopped before it was delivered',
    );
  }
}

/** The promise, or WebhookTimeout after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WebhookTimeout(ms)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
