/**
 * The server's Prometheus metrics (prom-client), one registry per server. Gauges are read from
 * their sources at scrape time (pool health, admission, jobs); counters and histograms are fed by
 * the pool's events, a metering wrapper around pool.detect, the upload/pose steps and a Fastify
 * onResponse hook (server/routes/metrics.ts).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type PosePool, SLOT_HEALTH_STATES, type SlotView, type WorkerExitEvent } from '../workers/index.js';
import { WEBHOOK_OUTCOMES, type WebhookObserver, type WebhookOutcome } from './jobs/webhooks.js';
import type { PoseResponse } from './pipeline/pose-response.js';
import type { FramesObserver } from './pipeline/pose-video-request.js';
import type { UploadObserver } from './upload/receive-video.js';
import type { ResumableEvent, ResumableObserver } from './upload/tus-store.js';

export interface MetricsSources {
  pool: Pick<PosePool, 'health'>;
  admission: { readonly stats: { active: number; queued: number } };
  /** Job counts by state, and the work queued or under way (set once the jobs API exists). */
  jobs?: { counts: () => Promise<Record<string, number>>; depth: () => Promise<number> };
}

export class ServerMetrics implements UploadObserver, FramesObserver, ResumableObserver, WebhookObserver {
  readonly registry = new Registry();
  private readonly sources: MetricsSources;
  private readonly readyPids = new Set<number>();
  private readonly restarts: Counter<'reason'>;
  private readonly startupFailures: Counter<'type'>;
  private readonly crashLoops: Counter;
  private readonly framesProcessed: Counter;
  private readonly framesFailed: Counter<'code'>;
  private readonly batchSeconds: Histogram<'outcome'>;
  private readonly inferenceSeconds: Histogram;
  private readonly uploadBytes: Histogram;
  private readonly resumableUploads: Counter<'event'>;
  private readonly resumableBytes: Counter;
  private readonly requestSeconds: Histogram<'method' | 'route' | 'status_code'>;
  private readonly webhookAttempts: Counter<'outcome'>;
  private readonly webhookSeconds: Histogram<'outcome'>;

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    this.sources = sources;
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    const health = () => this.sources.pool.health();
    new Gauge({
      name: 'posepool_workers_ready',
      help: 'Workers ready to pose (idle or busy)',
      registers,
      collect() {
        this.set(health().ready);
      },
    });
    new Gauge({
      name: 'posepool_workers_desired',
      help: 'Workers the pool keeps alive (POSE_WORKERS)',
      registers,
      collect() {
        this.set(health().desired);
      },
    });
    new Gauge({
      name: 'posepool_workers',
      help: 'Workers by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts: Record<string, number> = Object.fromEntries(SLOT_HEALTH_STATES.map((s) => [s, 0]));
        for (const w of health().workers) counts[w.state] = (counts[w.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    this.restarts = new Counter({
      name: 'posepool_worker_restarts_total',
      help: 'Unplanned worker exits (each is followed by a restart with backoff), by cause type',
      labelNames: ['reason'],
      registers,
    });
    this.startupFailures = new Counter({
      name: 'posepool_worker_startup_failures_total',
      help: 'Workers that exited before they were ready, by failure type (e.g. ModuleNotFoundError, StartupTimeout)',
      labelNames: ['type'],
      registers,
    });
    this.crashLoops = new Counter({
      name: 'posepool_worker_crash_loops_total',
      help: 'Times a worker was marked failed for crashing repeatedly within the crash window',
      registers,
    });
    this.framesProcessed = new Counter({
      name: 'posepool_frames_processed_total',
      help: 'Sampled frames posed without a per-frame error',
      registers,
    });
    this.framesFailed = new Counter({
      name: 'posepool_frames_failed_total',
      help: 'Sampled frames answered with a per-frame error, by code',
      labelNames: ['code'],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'posepool_batch_duration_seconds',
      help: 'One detect batch, from the request for a worker to its answer (waiting for a worker and one retry included)',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.inferenceSeconds = new Histogram({
      name: 'posepool_batch_inference_seconds',
      help: "The worker's own model time for one batch (pre/post-processing included)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const stats = () => this.sources.admission.stats;
    new Gauge({
      name: 'posepool_videos_active',
      help: 'Videos being posed now (at most MAX_ACTIVE_VIDEOS)',
      registers,
      collect() {
        this.set(stats().active);
      },
    });
    new Gauge({
      name: 'posepool_videos_queued',
      help: 'Videos admitted and waiting for a slot (at most MAX_QUEUED_VIDEOS; beyond that 503 BUSY)',
      registers,
      collect() {
        this.set(stats().queued);
      },
    });
    new Gauge({
      name: 'posepool_queue_depth',
      help: 'Videos in the server, active plus waiting: the autoscaling signal',
      registers,
      collect() {
        const s = stats();
        this.set(s.active + s.queued);
      },
    });
    // A jobs engine that cannot be read (Redis away) leaves its gauges out of the scrape, not the whole scrape.
    const jobs = async () => (await this.sources.jobs?.counts().catch(() => undefined)) ?? {};
    const depth = async () => this.sources.jobs?.depth().catch(() => undefined);
    new Gauge({
      name: 'posepool_jobs',
      help: 'Jobs by state: with REDIS_URL across every replica, else in this process',
      labelNames: ['state'],
      registers,
      async collect() {
        for (const [state, n] of Object.entries(await jobs())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'posepool_jobs_queue_depth',
      help: "Jobs queued or running; with REDIS_URL the whole queue's segments, waiting or being posed (every replica reports it; the HPA's jobs signal)",
      registers,
      async collect() {
        const n = await depth();
        if (n !== undefined) this.set(n);
      },
    });
    this.uploadBytes = new Histogram({
      name: 'posepool_upload_size_bytes',
      help: 'Size of accepted video uploads',
      buckets: [256 * 1024, 1024 ** 2, 4 * 1024 ** 2, 16 * 1024 ** 2, 64 * 1024 ** 2, 256 * 1024 ** 2, 1024 ** 3],
      registers,
    });
    this.resumableUploads = new Counter({
      name: 'posepool_resumable_uploads_total',
      help: 'Resumable (tus) uploads by event: created, finished, taken (by a job), returned (its job refused), refused (its video refused), expired',
      labelNames: ['event'],
      registers,
    });
    this.resumableBytes = new Counter({
      name: 'posepool_resumable_bytes_total',
      help: 'Bytes written into resumable uploads (what each PATCH brought, a cut one included)',
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'posepool_http_request_duration_seconds',
      help: 'HTTP requests, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.webhookAttempts = new Counter({
      name: 'posepool_webhook_deliveries_total',
      help:
        'Webhook attempts made by this replica, by outcome: delivered (2xx), retry (failed, another attempt follows), ' +
        'failed (failed for good: last attempt, or a 4xx), refused (the target broke the SSRF policy: nothing sent)',
      labelNames: ['outcome'],
      registers,
    });
    this.webhookSeconds = new Histogram({
      name: 'posepool_webhook_attempt_duration_seconds',
      help: 'One webhook attempt: DNS lookup, connect, send, and the answer (at most WEBHOOK_TIMEOUT_MS), by outcome',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    // Every outcome from the start (at 0), so that a rate over it exists before the first failure.
    for (const outcome of WEBHOOK_OUTCOMES) this.webhookAttempts.inc({ outcome }, 0);
  }

  /** Counts worker restarts and startup failures from the pool's events; returns the unsubscribe. */
  watchPool(events: Pick<PosePool, 'on' | 'off'>): () => void {
    const onReady = (view: SlotView) => {
      if (view.pid != null) this.readyPids.add(view.pid);
    };
    const onExit = (e: WorkerExitEvent) => {
      const wasReady = e.pid != null && this.readyPids.delete(e.pid);
      if (e.requested && !e.error) return; // shutdown, or a replacement the server asked for
      const type = e.error?.type ?? 'WorkerExited';
      this.restarts.inc({ reason: type });
      if (!wasReady) this.startupFailures.inc({ type });
    };
    const onFailed = () => this.crashLoops.inc();
    events.on('worker-ready', onReady);
    events.on('worker-exit', onExit);
    events.on('worker-failed', onFailed);
    return () => {
      events.off('worker-ready', onReady);
      events.off('worker-exit', onExit);
      events.off('worker-failed', onFailed);
    };
  }

  /** The pool with its detect() timed (batch latency, worker inference time). */
  meterPool(pool: PosePool): PosePool {
    const batchSeconds = this.batchSeconds;
    const inferenceSeconds = this.inferenceSeconds;
    return {
      async detect(params, opts) {
        const end = batchSeconds.startTimer();
        try {
          const result = await pool.detect(params, opts);
          end({ outcome: result.frames.some((f) => f.error) ? 'frame_errors' : 'ok' });
          inferenceSeconds.observe(result.timing.inferMs / 1000);
          return result;
        } catch (err) {
          end({ outcome: 'error' });
          throw err;
        }
      },
      model: () => pool.model(),
      get desired() {
        return pool.desired;
      },
      health: () => pool.health(),
      isAvailable: () => pool.isAvailable(),
      lastErrors: () => pool.lastErrors(),
      on: (event, listener) => pool.on(event, listener),
      off: (event, listener) => pool.off(event, listener),
    };
  }

  observeUpload(bytes: number): void {
    this.uploadBytes.observe(bytes);
  }

  observeResumable(event: ResumableEvent): void {
    this.resumableUploads.inc({ event });
  }

  observeResumableBytes(bytes: number): void {
    this.resumableBytes.inc(bytes);
  }

  observeFrames(frames: PoseResponse['frames']): void {
    let posed = 0;
    for (const f of frames) {
      if (f.error) this.framesFailed.inc({ code: f.error.code });
      else posed++;
    }
    this.framesProcessed.inc(posed);
  }

  observeRequest(method: string, route: string, statusCode: number, seconds: number): void {
    this.requestSeconds.observe({ method, route, status_code: String(statusCode) }, seconds);
  }

  observeWebhookAttempt(outcome: WebhookOutcome, seconds: number): void {
    this.webhookAttempts.inc({ outcome });
    this.webhookSeconds.observe({ outcome }, seconds);
  }

  /** The text exposition format, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
